variable "region" {
  type    = string
  default = env("AWS_REGION")
}

variable "instance_type" {
  type    = string
  default = "t3.small"
}

variable "ssh_username" {
  type    = string
  default = "admin"
}

variable "ssh_port" {
  type    = number
  default = 22
}

variable "out_dir" {
  type        = string
  default     = "/tmp"
  description = "Where the provisioners write what they did."
}

variable "disks" {
  type = list(object({ device = string, size = number }))
  default = [
    { device = "/dev/xvda", size = 8 },
    { device = "/dev/xvdb", size = 20 },
  ]
}

variable "tags" {
  type    = map(string)
  default = { team = "platform" }
}

locals {
  name_prefix = "base-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  common_tags = merge(var.tags, { built_by = "imgbuild" })
}

data "amazon-ami" "debian" {
  filters = {
    name                = "debian-12-amd64-*"
    virtualization-type = "hvm"
  }
  owners      = ["136693071363"]
  most_recent = true
  region      = var.region
}

source "amazon-ebs" "base" {
  region        = var.region
  source_ami    = data.amazon-ami.debian.id
  instance_type = var.instance_type
  ssh_username  = var.ssh_username
  ssh_port      = var.ssh_port
  ami_name      = "${local.name_prefix}-${source.name}"
  tags          = local.common_tags
  access_key    = "AKIA..."

  dynamic "launch_block_device_mappings" {
    for_each = var.disks
    content {
      device_name           = launch_block_device_mappings.value.device
      volume_size           = launch_block_device_mappings.value.size
      delete_on_termination = true
    }
  }

  metadata_options {
    http_tokens = "required"
  }
}

source "amazon-ebs" "web" {
  region        = var.region
  instance_type = var.instance_type
  ssh_username  = var.ssh_username
  ssh_port      = var.ssh_port
  ami_name      = "web-${uuidv4()}"

  source_ami_filter {
    filters = {
      name = "debian-12-amd64-*"
    }
    owners      = ["136693071363"]
    most_recent = true
  }
}

source "docker" "dev" {
  image  = "debian:12"
  commit = true
}

build {
  name    = "images"
  sources = ["source.amazon-ebs.base", "source.docker.dev"]

  source "source.amazon-ebs.web" {
    name          = "web"
    instance_type = "t3.medium"
  }

  provisioner "shell" {
    inline = ["echo ${build.name} ${source.name} > ${var.out_dir}/built-${source.name}"]
  }

  provisioner "shell" {
    only   = ["amazon-ebs.web"]
    inline = ["echo web only >> ${var.out_dir}/built-${source.name}"]
  }

  post-processor "manifest" {
    output = "output/manifest.json"
    custom_data = {
      region = var.region
    }
  }
}
