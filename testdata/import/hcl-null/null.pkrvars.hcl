ssh_port    = "22"
debug       = "true"
app_version = "1.5.0"
unused      = "shared var files set more than one template uses"
