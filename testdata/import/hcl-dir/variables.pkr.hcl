variable "vcenter_password" {
  type      = string
  sensitive = true
}

variable "cpus" {
  type    = number
  default = 2
}

variable "disk_gb" {
  type    = number
  default = 20
}

variable "hostname" {
  type    = string
  default = "debian-12"
}
