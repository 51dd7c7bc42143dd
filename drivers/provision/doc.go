// Package provision holds the provisioners: shell() runs scripts on the
// build's machine, shell_local() runs commands on this machine, file()
// moves files and directories between the two.
//
// Provisioners reach the machine only through engine.Communicator, so the
// same shell() works over SSH, in a chroot or in a local() build's
// directory. Each declares its keywords once, as a schema-tagged config
// struct, and registers with Register. The package knows nothing of
// Starlark (the builtins layer decodes keyword arguments into the configs)
// and nothing of any platform.
package provision

import "github.com/imgbuild/imgbuild/engine"

// Register adds shell, shell_local and file to r.
func Register(r *engine.Registry) {
	r.AddProvisioner(ShellDef())
	r.AddProvisioner(ShellLocalDef())
	r.AddProvisioner(FileDef())
}
