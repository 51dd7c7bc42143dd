file { '/tmp/x':
  ensure => file
  content => 'missing comma',
}
