package adapter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
)

// machineFiles does what SFTP and SCP ask of the machine's files through
// its communicator: transfers through Upload and Download, the rest as
// POSIX commands.
type machineFiles struct {
	comm engine.Communicator
	tmp  string
	// root is the directory of this machine that a PathMapper
	// communicator keeps the machine at ("" when commands and transfers
	// see the same paths).
	root string
}

func newMachineFiles(comm engine.Communicator, tmp string) (*machineFiles, error) {
	m := &machineFiles{comm: comm, tmp: tmp}
	if pm, ok := comm.(engine.PathMapper); ok {
		root, err := pm.CommandPath("/")
		if err != nil {
			return nil, fmt.Errorf("adapter: where the machine's files are: %w", err)
		}
		m.root = path.Clean(root)
	}
	return m, nil
}

// transferPath turns a path as commands see it into the path Upload and
// Download take.
func (m *machineFiles) transferPath(p string) (string, error) {
	p = path.Clean("/" + p)
	if m.root == "" {
		return p, nil
	}
	switch {
	case p == m.root:
		return "/", nil
	case strings.HasPrefix(p, m.root+"/"):
		return p[len(m.root):], nil
	}
	return "", &fs.PathError{Op: "transfer", Path: p, Err: fmt.Errorf("is outside the build's directory %s: %w", m.root, syscall.EACCES)}
}

// run runs a command line and returns an error built from its stderr when
// it fails: ENOENT, EACCES and EEXIST are recognised, so that the client
// hears "no such file" rather than "failure".
func (m *machineFiles) run(ctx context.Context, op, p, line string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	status, err := m.comm.Run(ctx, &engine.Command{Command: line, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: p, Err: err}
	}
	if status != 0 {
		return stdout.Bytes(), &fs.PathError{Op: op, Path: p, Err: commandError(status, stderr.String())}
	}
	return stdout.Bytes(), nil
}

// commandError is a failed file command's error: the errno its message
// names, wrapped with the message.
func commandError(status int, stderr string) error {
	msg := strings.TrimSpace(stderr)
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:]
	}
	if msg == "" {
		msg = "exit status " + strconv.Itoa(status)
	}
	for _, e := range []struct {
		text  string
		errno syscall.Errno
	}{
		{"No such file", syscall.ENOENT},
		{"Permission denied", syscall.EACCES},
		{"Operation not permitted", syscall.EPERM},
		{"File exists", syscall.EEXIST},
		{"Not a directory", syscall.ENOTDIR},
		{"Is a directory", syscall.EISDIR},
		{"Directory not empty", syscall.ENOTEMPTY},
	} {
		if strings.Contains(msg, e.text) {
			return &errnoMessage{errno: e.errno, msg: msg}
		}
	}
	return errors.New(msg)
}

// errnoMessage is an errno with the message that named it.
type errnoMessage struct {
	errno syscall.Errno
	msg   string
}

func (e *errnoMessage) Error() string { return e.msg }
func (e *errnoMessage) Unwrap() error { return e.errno }

// statFormat is what stat -c prints per file: the raw mode in hex, size,
// access and modification times, owner and group, then the name.
const statFormat = "%f %s %X %Y %u %g %n"

// stat returns p's attributes; follow says whether to follow a symbolic
// link.
func (m *machineFiles) stat(ctx context.Context, p string, follow bool) (*fileInfo, error) {
	flag := ""
	if follow {
		flag = "-L "
	}
	out, err := m.run(ctx, "stat", p, "stat "+flag+"-c "+shellquote.Quote(statFormat)+" -- "+shellquote.Quote(p))
	if err != nil {
		return nil, err
	}
	fi, err := parseStat(strings.TrimRight(string(out), "\n"))
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	fi.name = path.Base(p)
	return fi, nil
}

// list returns the entries of the directory dir.
func (m *machineFiles) list(ctx context.Context, dir string) ([]os.FileInfo, error) {
	line := "cd -- " + shellquote.Quote(dir) + " || exit 1; for f in * .[!.]* ..?*; do " +
		`if [ -e "$f" ] || [ -L "$f" ]; then stat -c ` + shellquote.Quote(statFormat) + ` -- "$f" || exit 1; fi; done`
	out, err := m.run(ctx, "readdir", dir, line)
	if err != nil {
		return nil, err
	}
	var list []os.FileInfo
	for _, l := range strings.Split(string(out), "\n") {
		if l == "" {
			continue
		}
		fi, err := parseStat(l)
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: dir, Err: err}
		}
		list = append(list, fi)
	}
	return list, nil
}

// readlink returns the target of the symbolic link p.
func (m *machineFiles) readlink(ctx context.Context, p string) (string, error) {
	out, err := m.run(ctx, "readlink", p, "readlink -- "+shellquote.Quote(p))
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(out), "\n"), nil
}

// command runs a file command (mkdir, rm, mv, ...) whose argument list is
// args, shell-quoted.
func (m *machineFiles) command(ctx context.Context, op, p string, args ...string) error {
	_, err := m.run(ctx, op, p, shellquote.Join(args...))
	return err
}

// download copies the machine's file p into a file of this machine and
// returns it, open and already removed from its directory, so that it goes
// when closed.
func (m *machineFiles) download(ctx context.Context, p string) (*os.File, error) {
	tp, err := m.transferPath(p)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(m.tmp, "download-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	if err := m.comm.Download(ctx, tp, f, engine.Transfer{}); err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "download", Path: p, Err: err}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// upload writes r (size bytes) to the machine's file p with mode.
func (m *machineFiles) upload(ctx context.Context, p string, r io.Reader, size int64, mode fs.FileMode) error {
	tp, err := m.transferPath(p)
	if err != nil {
		return err
	}
	if err := m.comm.Upload(ctx, tp, r, engine.Transfer{Size: size, Mode: mode}); err != nil {
		return &fs.PathError{Op: "upload", Path: p, Err: err}
	}
	return nil
}

// fileInfo is a file's attributes as stat printed them. It implements
// os.FileInfo and sftp.FileInfoUidGid.
type fileInfo struct {
	name     string
	size     int64
	mode     fs.FileMode
	atime    time.Time
	mtime    time.Time
	uid, gid uint32
}

func (f *fileInfo) Name() string       { return f.name }
func (f *fileInfo) Size() int64        { return f.size }
func (f *fileInfo) Mode() fs.FileMode  { return f.mode }
func (f *fileInfo) ModTime() time.Time { return f.mtime }
func (f *fileInfo) IsDir() bool        { return f.mode.IsDir() }
func (f *fileInfo) Sys() any           { return nil }

// Uid implements sftp.FileInfoUidGid.
func (f *fileInfo) Uid() uint32 { return f.uid }

// Gid implements sftp.FileInfoUidGid.
func (f *fileInfo) Gid() uint32 { return f.gid }

// parseStat reads one line printed with statFormat.
func parseStat(line string) (*fileInfo, error) {
	fields := strings.SplitN(line, " ", 7)
	if len(fields) < 6 {
		return nil, fmt.Errorf("stat printed %q, not \"mode size atime mtime uid gid name\"", line)
	}
	raw, err := strconv.ParseUint(fields[0], 16, 32)
	if err != nil {
		return nil, fmt.Errorf("stat printed mode %q, not hexadecimal", fields[0])
	}
	var n [5]int64
	for i := range n {
		if n[i], err = strconv.ParseInt(fields[i+1], 10, 64); err != nil || n[i] < 0 {
			return nil, fmt.Errorf("stat printed %q where a number belongs", fields[i+1])
		}
	}
	if n[3] > 1<<32-1 || n[4] > 1<<32-1 {
		return nil, fmt.Errorf("stat printed owner %d and group %d, out of range", n[3], n[4])
	}
	fi := &fileInfo{
		size: n[0], mode: fileMode(uint32(raw)),
		atime: time.Unix(n[1], 0), mtime: time.Unix(n[2], 0),
		uid: uint32(n[3]), gid: uint32(n[4]),
	}
	if len(fields) == 7 {
		fi.name = fields[6]
	}
	return fi, nil
}

// fileMode converts a POSIX st_mode into an fs.FileMode.
func fileMode(raw uint32) fs.FileMode {
	m := fs.FileMode(raw & 0o777)
	switch raw & syscall.S_IFMT {
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	}
	if raw&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if raw&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if raw&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
