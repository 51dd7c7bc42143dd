d-i netcfg/get_hostname string ${hostname}
d-i pkgsel/include string %{ for p in packages }${p} %{ endfor }
