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
// The package knows nothing of Starlark: the builtins layer decodes
// keyword arguments into Config.
package puppet
