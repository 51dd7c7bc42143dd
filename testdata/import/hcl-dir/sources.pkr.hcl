source "vsphere-iso" "debian" {
  vcenter_server      = "vcenter.example.com"
  username            = "builder@vsphere.local"
  password            = var.vcenter_password
  insecure_connection = true
  datacenter          = "dc1"
  cluster             = "cluster1"
  datastore           = "datastore1"
  vm_name             = "debian-12-${formatdate("YYYYMMDD", timestamp())}"
  guest_os_type       = "debian12_64Guest"
  CPUs                = var.cpus
  RAM                 = 2048
  disk_controller_type = ["pvscsi"]
  iso_paths           = ["[datastore1] iso/debian-12.iso"]
  http_content = {
    "/preseed.cfg" = templatefile("${path.root}/http/preseed.pkrtpl.hcl", { hostname = var.hostname, packages = ["openssh-server", "sudo"] })
  }
  boot_command = [
    "<esc><wait>",
    "auto url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg hostname=${var.hostname}<enter>",
  ]
  ssh_username        = "debian"
  ssh_password        = var.vcenter_password
  convert_to_template = true

  storage {
    disk_size             = var.disk_gb * 1024
    disk_thin_provisioned = true
  }

  network_adapters {
    network      = "VM Network"
    network_card = "vmxnet3"
  }
}

source "qemu" "local" {
  iso_url          = "http/base.qcow2"
  iso_checksum     = "none"
  disk_image       = true
  disk_size        = 8192
  memory           = 1024
  cpus             = var.cpus
  format           = "qcow2"
  headless         = true
  ssh_username     = "root"
  shutdown_command = "poweroff"
  qemuargs         = [["-serial", "mon:stdio"], ["-device", "virtio-rng-pci"]]
}
