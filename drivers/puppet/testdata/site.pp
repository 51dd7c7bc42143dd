# The manifest the tests apply: a directory and files from a fact, a
# module's template and a Hiera lookup.
$target = $facts['dest']

file { $target:
  ensure => directory,
}

file { "${target}/motd":
  ensure  => file,
  content => "role ${facts['role']}, greeting ${lookup('greeting')}\n",
  require => File[$target],
}

class { 'hello':
  dest => $target,
}
