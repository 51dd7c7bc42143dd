// Package testinfra holds the testinfra() provisioner, meant for a build's
// tests = [...]: it runs Python testinfra test files (pytest with the
// testinfra plugin, Debian's python3-testinfra) on this machine against the
// build's machine over SSH.
//
// pytest reaches the machine through testinfra's ssh backend
// (--hosts=ssh://<alias> --ssh-config=<file>) with an ssh_config that
// drivers/ssh writes from the communicator's endpoint: the machine's
// address, port and user, a known_hosts file holding only the host key
// imgbuild verified (host key checking stays on), and the build's login
// keys lent by an in-process ssh-agent, never written to a file.
//
// The package knows nothing of Starlark: the builtins layer decodes
// keyword arguments into Config.
package testinfra
