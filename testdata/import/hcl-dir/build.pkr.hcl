build {
  sources = ["source.vsphere-iso.debian", "source.qemu.local"]

  provisioner "file" {
    content     = file("${path.root}/http/motd")
    destination = "/etc/motd"
  }

  provisioner "shell-local" {
    inline = ["echo built ${source.type}"]
  }

  post-processor "checksum" {
    checksum_types = ["sha256"]
    output         = "output/{{.BuildName}}.{{.ChecksumType}}"
    only           = ["qemu.local"]
  }

  post-processors {
    post-processor "vagrant" {
      output            = "output/{{.BuildName}}-{{.Provider}}.box"
      compression_level = 6
      only              = ["qemu.local"]
    }
  }
}
