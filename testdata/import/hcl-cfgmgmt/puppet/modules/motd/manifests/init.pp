class motd {
  file { "${facts['out_dir']}/puppet-${facts['role']}":
    content => lookup('motd::greeting'),
  }
}
