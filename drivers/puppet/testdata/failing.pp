exec { 'imgbuild-fails':
  command => '/bin/false',
}

file { '/nonexistent-imgbuild-dir/never':
  ensure  => file,
  require => Exec['imgbuild-fails'],
}
