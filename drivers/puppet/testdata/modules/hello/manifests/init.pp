class hello (String $dest) {
  file { "${dest}/from-module":
    ensure  => file,
    content => template('hello/greeting.erb'),
    require => File[$dest],
  }
}
