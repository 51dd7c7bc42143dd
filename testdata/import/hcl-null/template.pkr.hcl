packer {
  required_plugins {
    ansible = {
      version = ">= 1.1.0"
      source  = "github.com/hashicorp/ansible"
    }
  }
}

variable "ssh_host" {
  type        = string
  default     = "127.0.0.1"
  description = "Address of the machines to provision."
}

variable "ssh_port" {
  type    = number
  default = 22
}

variable "ssh_username" {
  type    = string
  default = env("USER")
}

variable "ssh_private_key_file" {
  type = string
}

variable "ssh_host_key" {
  type      = string
  default   = ""
  sensitive = false
}

variable "app_version" {
  type    = string
  default = "1.4.2"
  validation {
    condition     = length(var.app_version) > 2 && substr(var.app_version, 0, 1) != "v"
    error_message = "The version must look like 1.2.3."
  }
}

variable "out_dir" {
  type    = string
  default = "/tmp"
}

variable "deploy_token" {
  type      = string
  default   = "not-a-real-token"
  sensitive = true
}

variable "debug" {
  type    = bool
  default = false
}

locals {
  stamp      = formatdate("YYYYMMDD-hhmm", timestamp())
  release    = "app-${var.app_version}-${local.stamp}"
  checksum   = sha256(var.app_version)
  greeting   = upper("hello ${var.ssh_username}")
}

source "null" "primary" {
  ssh_host             = var.ssh_host
  ssh_port             = var.ssh_port
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_host_key         = var.ssh_host_key
  communicator         = "ssh"
}

source "null" "secondary" {
  ssh_host             = var.ssh_host
  ssh_port             = var.ssh_port
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_host_key         = var.ssh_host_key
}

build {
  sources = ["source.null.primary", "source.null.secondary"]

  provisioner "shell" {
    inline = [
      "echo ${local.greeting} > ${var.out_dir}/greeting-${source.name}",
      "echo ${var.debug} >> ${var.out_dir}/greeting-${source.name}",
    ]
  }

  provisioner "file" {
    source      = "${path.root}/scripts/motd.txt"
    destination = "${var.out_dir}/motd-${source.name}"
  }

  provisioner "shell" {
    only             = ["null.primary"]
    environment_vars = ["RELEASE=${local.release}", "TOKEN=${var.deploy_token}"]
    script           = "scripts/release.sh"
    execute_command  = "chmod +x {{ .Path }}; {{ .Vars }} OUT=${var.out_dir} {{ .Path }}"
  }

  provisioner "shell" {
    except = ["null.primary"]
    inline = ["echo secondary > ${var.out_dir}/role-${source.name}"]
    override = {
      "null.secondary" = {
        inline = ["echo overridden > ${var.out_dir}/role-${source.name}"]
      }
    }
  }

  provisioner "breakpoint" {
    note = "inspect the machine"
  }

  error-cleanup-provisioner "shell" {
    inline = ["echo ${source.name} failed > ${var.out_dir}/failed-${source.name}"]
    override = {
      "null.secondary" = {
        inline = ["echo secondary failed > ${var.out_dir}/failed-${source.name}"]
      }
    }
  }

  error-cleanup-provisioner "shell" {
    inline = ["echo a second one"]
  }

  post-processor "manifest" {
    output     = "output/manifest.json"
    strip_path = true
  }
}
