# vSphere clones in a named build: a VM template cloned twice (linked and
# full), customized, exported and checksummed, as vSphere shops write it.

variable "vcenter_password" {
  type      = string
  sensitive = true
}

variable "template" {
  type    = string
  default = "templates/debian-12"
}

source "vsphere-clone" "linked" {
  vcenter_server      = "vcenter.example.com"
  username            = "builder@vsphere.local"
  password            = var.vcenter_password
  insecure_connection = true
  datacenter          = "dc1"
  cluster             = "cluster1"
  datastore           = "datastore1"
  folder              = "images"
  template            = var.template
  linked_clone        = true
  vm_name             = "web-${formatdate("YYYYMMDD", timestamp())}"
  CPUs                = 2
  RAM                 = 4096
  notes               = "Built by Packer from ${var.template}"
  ssh_username        = "debian"
  ssh_password        = var.vcenter_password
  convert_to_template = true

  customize {
    linux_options {
      host_name = "web"
      domain    = "example.com"
    }
    network_interface {
      ipv4_address = "10.0.0.10"
      ipv4_netmask = 24
    }
  }
}

source "vsphere-clone" "full" {
  vcenter_server      = "vcenter.example.com"
  username            = "builder@vsphere.local"
  password            = var.vcenter_password
  insecure_connection = true
  datacenter          = "dc1"
  cluster             = "cluster1"
  datastore           = "datastore1"
  template            = var.template
  vm_name             = "db-${formatdate("YYYYMMDD", timestamp())}"
  disk_controller_type = ["pvscsi"]
  ssh_username        = "debian"
  ssh_password        = var.vcenter_password

  export {
    force            = true
    output_directory = "output/db"
  }
}

build {
  name    = "clones"
  sources = ["source.vsphere-clone.linked", "source.vsphere-clone.full"]

  provisioner "shell" {
    inline = ["sudo apt-get update", "sudo apt-get -y upgrade"]
  }

  post-processor "checksum" {
    checksum_types = ["sha256"]
    output         = "output/{{.BuildName}}.{{.ChecksumType}}"
    only           = ["vsphere-clone.full"]
  }
}
