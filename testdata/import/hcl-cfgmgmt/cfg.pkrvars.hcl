ssh_port = "22"
nocolor  = "true"
