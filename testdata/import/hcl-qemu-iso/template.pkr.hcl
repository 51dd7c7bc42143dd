# A bento-style Debian install: the netinst ISO, a preseed served over
# HTTP, a boot command typed at the installer's menu, EFI firmware.
packer {
  required_plugins {
    qemu = {
      source  = "github.com/hashicorp/qemu"
      version = ">= 1.0.0"
    }
  }
}

variable "iso_name" {
  type    = string
  default = "debian-12-amd64-netinst.iso"
}

source "qemu" "debian" {
  iso_urls         = [var.iso_name, "https://cdimage.example.org/debian-cd/current/amd64/iso-cd/${var.iso_name}"]
  iso_checksum     = "file:SHA256SUMS"
  disk_size        = 20480
  disk_interface   = "virtio"
  net_device       = "virtio-net"
  format           = "qcow2"
  vm_name          = "debian-12.qcow2"
  headless         = true
  efi_boot         = true
  memory           = 2048
  cpus             = 2
  machine_type     = "q35"
  http_directory   = "http"
  http_port_min    = 8100
  http_port_max    = 8200
  cd_files         = ["./http/preseed.cfg"]
  cd_label         = "cidata"
  boot_wait        = "5s"
  boot_command     = ["<wait><esc><wait>", "auto url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg hostname={{ .Name }} <enter>"]
  ssh_username     = "vagrant"
  ssh_password     = "vagrant"
  ssh_timeout      = "60m"
  shutdown_command = "echo 'vagrant' | sudo -S shutdown -P now"
}

build {
  sources = ["source.qemu.debian"]

  provisioner "shell" {
    inline = ["sudo apt-get clean"]
  }
}
