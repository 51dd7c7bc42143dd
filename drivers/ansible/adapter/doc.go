// Package adapter is a small SSH server on 127.0.0.1 that carries an SSH
// client's commands and file transfers to a build's machine through the
// machine's engine.Communicator. The ansible() provisioner points
// ansible-playbook at it, so that one playbook runs the same way whether
// the machine is reached over SSH, is a chroot (rootfs()) or a directory of
// this machine (local()), as Packer's ansible provisioner does.
//
// The server is built on golang.org/x/crypto/ssh's server side and
// github.com/pkg/sftp's request server. It has a host key and accepts one
// client key, both made for one Start and never written anywhere but the
// client's key file: nobody else can log in. It serves sessions only (no
// port forwarding, no shells) and in them:
//
//   - exec requests: the command line runs through Communicator.Run, its
//     input, output and exit status carried over the channel, a "signal"
//     request or a closed channel cancelling it;
//   - the "sftp" subsystem: reads and writes go through
//     Communicator.Download and Upload (staged in a file on this machine,
//     since SFTP writes at offsets), and stat, list, mkdir, rename, remove,
//     chmod, chown, utimes, symlink and readlink run as POSIX commands (stat,
//     mkdir, mv, ...) on the machine;
//   - "scp -t" and "scp -f" exec requests (legacy SCP, scp -O), spoken by
//     the adapter itself rather than run on the machine.
//
// Paths in requests are the paths commands see. For a communicator whose
// commands see other paths than its file transfers (engine.PathMapper: the
// local communicator keeps the machine at a directory of this machine), the
// adapter maps them back, and refuses paths outside the machine.
//
// The package knows nothing of Ansible, Starlark or any platform.
package adapter
