# Packer's firmware: a file QEMU boots as its BIOS (-bios). Alone it
# becomes qemu_args; beside qemuargs it goes first in them; a relative
# path and use_pflash = true are TODOs.
source "qemu" "alone" {
  iso_url      = "installer.iso"
  iso_checksum = "sha256:73cb3858a687a8494ca3323053016282f3dad39d42cf62ca4e79dda2aac7d9ac"
  firmware     = "/usr/share/seabios/bios-256k.bin"
  ssh_username = "root"
}

source "qemu" "with-qemuargs" {
  iso_url      = "installer.iso"
  iso_checksum = "sha256:73cb3858a687a8494ca3323053016282f3dad39d42cf62ca4e79dda2aac7d9ac"
  firmware     = "/usr/share/qemu/bios.bin"
  qemuargs     = [["-device", "virtio-tablet"], ["-smbios", "type=0,vendor=imgbuild"]]
  ssh_username = "root"
}

source "qemu" "relative" {
  iso_url      = "installer.iso"
  iso_checksum = "sha256:73cb3858a687a8494ca3323053016282f3dad39d42cf62ca4e79dda2aac7d9ac"
  firmware     = "fw/bios.bin"
  ssh_username = "root"
}

source "qemu" "pflash" {
  iso_url      = "installer.iso"
  iso_checksum = "sha256:73cb3858a687a8494ca3323053016282f3dad39d42cf62ca4e79dda2aac7d9ac"
  firmware     = "/usr/share/OVMF/OVMF_CODE.fd"
  use_pflash   = true
  ssh_username = "root"
}

build {
  sources = ["source.qemu.alone", "source.qemu.with-qemuargs", "source.qemu.relative", "source.qemu.pflash"]
}
