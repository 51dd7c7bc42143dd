package engine

import (
	"context"
	"errors"
	"io"
	"io/fs"
)

// Communicator runs commands on a build's machine and moves files to and
// from it. The SSH, chroot and local communicators implement it; the
// provisioners use nothing else. Implementations reconnect on their own when
// a previous command ended in ErrDisconnected.
type Communicator interface {
	// Run runs cmd.Command through the machine's POSIX shell and returns its
	// exit status. err is for failing to run it at all or losing the
	// connection (wrapping ErrDisconnected), never for a non-zero exit.
	// Cancelling ctx stops the remote command.
	Run(ctx context.Context, cmd *Command) (exitStatus int, err error)
	// Upload writes src to the file dst on the machine, creating it with
	// t.Mode. If the transfer fails, dst is removed.
	Upload(ctx context.Context, dst string, src io.Reader, t Transfer) error
	// UploadDir copies the local directory src to dst on the machine: its
	// contents, recursively, keeping modes and symlinks as links.
	UploadDir(ctx context.Context, dst, src string, t Transfer) error
	// Download copies the file src on the machine to dst.
	Download(ctx context.Context, src string, dst io.Writer, t Transfer) error
	// DownloadDir copies the directory src on the machine into the local
	// directory dst, keeping modes and symlinks.
	DownloadDir(ctx context.Context, src, dst string, t Transfer) error
}

// Command is one shell command line to run. Stdout and Stderr may be nil.
type Command struct {
	Command string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

// Transfer describes a file transfer: its size when known, the mode of the
// created file (0 means 0644) and where to report progress.
type Transfer struct {
	Size     int64
	Mode     fs.FileMode
	Progress func(done, total int64)
}

// ErrDisconnected wraps errors caused by losing the connection to the
// machine, such as a reboot. A shell provisioner with expect_disconnect
// treats it as success.
var ErrDisconnected = errors.New("connection to the machine was lost")

// PathMapper is implemented by communicators whose file paths and command
// paths differ: the local communicator keeps a machine path p at
// <root>/p, and commands must name it so. A provisioner that uploads a file
// and then names it in a command asks CommandPath for that name.
type PathMapper interface {
	CommandPath(p string) (string, error)
}
