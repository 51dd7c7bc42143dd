# Configuration management the way Packer templates write it: Ansible from
# this machine and on the machine, masterless Puppet and Chef solo.

variable "ssh_port" {
  type    = number
  default = 22
}

variable "ssh_username" {
  type = string
}

variable "ssh_private_key_file" {
  type = string
}

variable "ssh_host_key" {
  type    = string
  default = ""
}

variable "out_dir" {
  type    = string
  default = "/tmp"
}

variable "nocolor" {
  type    = bool
  default = false
}

variable "chef_version" {
  type    = string
  default = "18.2.7"
}

locals {
  groups = "web,app"
}

source "null" "web" {
  ssh_host             = "127.0.0.1"
  ssh_port             = var.ssh_port
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_host_key         = var.ssh_host_key
}

source "null" "db" {
  ssh_host             = "127.0.0.1"
  ssh_port             = var.ssh_port
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_host_key         = var.ssh_host_key
}

build {
  sources = ["source.null.web", "source.null.db"]

  provisioner "ansible" {
    playbook_file        = "./ansible/site.yml"
    user                 = var.ssh_username
    host_alias           = source.name
    groups               = ["imported", source.name]
    roles_path           = "ansible/roles:ansible/more-roles"
    ansible_env_vars     = ["ANSIBLE_NOCOLOR=${var.nocolor}", "ANSIBLE_HOST_KEY_CHECKING=True"]
    extra_arguments      = ["--extra-vars", "role=${source.name} out_dir=${var.out_dir} greeting=hello"]
    use_proxy            = true
    use_sftp             = true
    galaxy_force_install = true
    timeout              = "10m"
    max_retries          = 1
  }

  provisioner "ansible-local" {
    except                  = ["null.web"]
    playbook_files          = ["ansible/local.yml"]
    playbook_dir            = "ansible"
    inventory_groups        = local.groups
    staging_directory       = "/tmp/imported-ansible-local"
    clean_staging_directory = true
    extra_arguments         = ["--extra-vars", "out_dir=${var.out_dir}"]
    group_vars              = "ansible/group_vars"
  }

  provisioner "puppet-masterless" {
    manifest_file     = "puppet/site.pp"
    module_paths      = ["puppet/modules"]
    hiera_config_path = "puppet/hiera.yaml"
    facter = {
      role    = source.name
      out_dir = var.out_dir
    }
    extra_arguments   = ["--verbose"]
    prevent_sudo      = true
    execute_command   = "cd {{.WorkingDir}} && {{.FacterVars}} {{if .Sudo}}sudo -E {{end}}puppet apply --detailed-exitcodes {{.ExtraArguments}} {{.ManifestFile}}"
    ignore_exit_codes = true
    guest_os_type     = "unix"
    override = {
      "null.db" = {
        puppet_bin_dir = "/opt/puppetlabs/bin"
      }
    }
  }

  provisioner "puppet-masterless" {
    only            = ["null.web"]
    manifest_file   = "puppet/site.pp"
    execute_command = "{{if ne .ModulePath \"\"}}--modulepath='{{.ModulePath}}' {{end}}puppet apply {{.ManifestFile}}"
  }

  provisioner "chef-solo" {
    cookbook_paths                 = ["chef/cookbooks"]
    roles_path                     = "chef/roles"
    data_bags_path                 = "chef/data_bags"
    environments_path              = "chef/environments"
    encrypted_data_bag_secret_path = "chef/secret"
    chef_environment               = "staging"
    chef_license                   = "accept-silent"
    run_list                       = ["role[web]", "recipe[base]"]
    json = {
      out_dir = var.out_dir
      app = {
        port = 8080
      }
    }
    version           = var.chef_version
    skip_install      = false
    prevent_sudo      = false
    staging_directory = "/tmp/imported-chef"
    install_command   = "curl -L https://omnitruck.chef.io/install.sh | {{if .Sudo}}sudo{{end}} bash -s --{{if .Version}} -v {{.Version}}{{end}}"
    execute_command   = "{{if .Sudo}}sudo {{end}}chef-solo --no-color -c {{.ConfigPath}} -j {{.JsonPath}}"
    config_template   = "chef/solo.rb.tpl"
  }
}
