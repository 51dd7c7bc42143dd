# The manifest puppet_apply() applies inside the tree: a package, a file
# and a service enabled.
package { 'rsyslog':
  ensure => installed,
}

file { '/etc/imgbuild-puppet':
  ensure  => file,
  content => "configured by puppet_apply, role ${facts['role']}\n",
}

# Puppet's service providers want a running init (in a chroot systemd is
# not process 1, so Puppet finds systemd "not functional"): enable the
# unit with systemctl, which works without it.
exec { 'enable rsyslog':
  command => '/usr/bin/systemctl enable rsyslog.service',
  unless  => '/usr/bin/systemctl is-enabled rsyslog.service',
  require => Package['rsyslog'],
}
