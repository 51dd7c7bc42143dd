// Package puppet is the puppet_apply() provisioner: masterless Puppet, as
// Packer's puppet-masterless. It uploads the manifest, the module paths
// and the Hiera configuration (with the data directories it names) to a
// staging directory on the build's machine, runs puppet apply there with
// the facts given as FACTER_ variables, and removes what it uploaded.
// install = True installs Puppet through the machine's package manager
// first (Debian's archive has Puppet 7).
//
// puppet apply runs with --detailed-exitcodes: 0 (nothing changed) and 2
// (changes made) are success. A failed resource or a manifest that does
// not compile fails the build with Puppet's own "Error:" lines.
//
// In a rootfs() chroot, systemd is not process 1: Puppet's systemd service
// provider declares itself not functional and the SysV one needs an init
// script most units lack, so a service resource cannot enable a unit
// there. Enable it with an exec of "systemctl enable", which works
// without a running systemd (see drivers/cfgtool/e2e/testdata/inside.pp).
//
// The package knows nothing of Starlark: the builtins layer decodes
// keyword arguments into Config.
package puppet
