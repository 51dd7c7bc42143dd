// Package ssh is the SSH/SFTP communicator: how every remote driver (null,
// amazon, vsphere, qemu, ...) reaches the machine it builds, runs commands on
// it and moves files to and from it. It implements engine.Communicator on
// golang.org/x/crypto/ssh and github.com/pkg/sftp.
//
// It holds the one declaration of the SSH keywords (Options), embedded by
// every driver that uses SSH:
//
//	type Config struct {
//		SSH ssh.Options `kw:",squash"`
//	}
//
// A driver validates them with Options.Validate, saying what it learns by
// itself (the address, the host key, a per-build key it installs), and
// connects with Connect, passing what it learned out of band: the host key it
// read from the machine's console, and a key pair made for the build by
// NewKey whose private half never leaves memory.
//
// Connect waits for the machine: it retries with backoff until ssh_timeout,
// verifies the host key (a pinned key or fingerprint, a known_hosts file, the
// driver's key, or the explicit insecure opt-out, which warns), goes through
// a bastion when one is set and keeps the connection alive. The Communicator
// it returns streams command output to the caller's writers, kills the remote
// command (its whole process group) when the context is cancelled, reports a
// lost connection as an error wrapping engine.ErrDisconnected and reconnects
// on the next call.
//
// The package knows nothing of Starlark, of the build graph or of any cloud:
// it sees typed options and an event.UI to report through.
//
// Two files pass 500 lines: sftp.go holds every transfer (files and
// directories, both ways) over one SFTP client with the error handling they
// share, and connect_test.go the connection tests against a real sshd with
// their table of faults.
package ssh
