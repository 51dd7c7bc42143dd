// Package ansible holds the ansible() and ansible_local() provisioners.
//
// ansible() runs ansible-playbook on this machine against the build's
// machine. It reaches the machine through imgbuild's SSH adapter
// (drivers/ansible/adapter), a server on 127.0.0.1 that carries Ansible's
// commands and file transfers to the build's communicator, so the same
// playbook provisions an SSH machine, a rootfs() chroot and a local()
// directory. The generated inventory (one host, host_alias, in groups)
// gives Ansible a one-time key for the adapter and a known_hosts file
// holding the adapter's host key, so host key checking stays on; with
// use_proxy = False it holds the machine's own address and the host key
// imgbuild verified, and the keys imgbuild logged in with are lent to
// ansible-playbook through an in-process ssh-agent, never a file.
//
// ansible_local() uploads the playbook's directory to the machine and runs
// ansible-playbook there with -c local, after installing Ansible through
// the machine's package manager when install = True.
//
// Both give extra_vars to Ansible in a JSON file of mode 0600 (-e @file),
// never on a command line. Both load imgbuild's callback plugin
// (callback/imgbuild.py), which prints one tagged JSON line per task and
// result beside Ansible's own output: the output streams to the build's log
// as it comes, and a failed task fails the build with the task's name,
// where it is written and Ansible's message. A playbook Ansible cannot load
// fails with Ansible's own "ERROR!" text.
//
// The package knows nothing of Starlark: the builtins layer decodes
// keyword arguments into Config and LocalConfig.
package ansible
