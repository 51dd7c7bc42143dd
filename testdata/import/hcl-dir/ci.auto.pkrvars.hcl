vcenter_password = "not-a-real-password"
cpus             = "4"
