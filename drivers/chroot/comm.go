package chroot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/imgbuild/imgbuild/drivers/local"
	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/journal"
)

// Options configure a Comm.
type Options struct {
	// Env is added to every command's environment, after the defaults
	// (PATH, HOME=/root, LANG=C.UTF-8, DEBIAN_FRONTEND=noninteractive).
	Env map[string]string
	// Binds are directories of this machine that commands see inside the
	// tree (a package cache).
	Binds []Bind
	// PolicyRCD installs /usr/sbin/policy-rc.d for the session, so that
	// packages installed by commands do not start their services. A
	// policy-rc.d already in the tree is left alone.
	PolicyRCD bool
	// ResolvConf gives commands this machine's /etc/resolv.conf for the
	// session, so that they can resolve names; Close puts back what the
	// tree had (a file, a symbolic link, or nothing) unless a command
	// replaced it.
	ResolvConf bool
}

// Comm is the chroot communicator: an engine.Communicator whose machine is
// a root file system tree on this machine. See the package documentation
// for how commands run.
//
// Paths given to Upload, Download and the others are paths inside the tree;
// symbolic links are followed as a command in the tree would follow them
// (an absolute link target starts from the tree's root), and never lead out
// of it. Commands see the same paths, so Comm is not an engine.PathMapper.
type Comm struct {
	root  string
	env   []string
	binds []Bind
	files *local.Comm

	mu     sync.Mutex
	closed bool
	undo   []func() error // what Close puts back, in reverse order
}

var _ engine.Communicator = (*Comm)(nil)

// defaultEnv is every command's environment before Options.Env.
var defaultEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"LANG=C.UTF-8",
	"DEBIAN_FRONTEND=noninteractive",
	"TERM=dumb",
}

// New returns a communicator for the tree at root, which must exist and
// hold /bin/sh. It needs root. Close it when done: that restores what
// PolicyRCD and ResolvConf changed in the tree.
func New(root string, opts Options) (*Comm, error) {
	if err := NeedRoot("the chroot communicator"); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("chroot: the tree %s: %w", abs, bareErr(err))
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("chroot: %s is not a directory", abs)
	}
	c := &Comm{root: abs, env: append([]string(nil), defaultEnv...)}
	if sh, err := c.hostPath("/bin/sh"); err != nil {
		return nil, err
	} else if _, err := os.Stat(sh); err != nil {
		return nil, fmt.Errorf("chroot: the tree %s has no /bin/sh: is it a root file system?", abs)
	}
	keys := make([]string, 0, len(opts.Env))
	for k := range opts.Env {
		if !shellquote.ValidName(k) {
			return nil, fmt.Errorf("chroot: %q is not a valid environment variable name (letters, digits and _, not starting with a digit)", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c.env = setEnv(c.env, k, opts.Env[k])
	}
	for _, b := range opts.Binds {
		if !filepath.IsAbs(b.Source) {
			return nil, fmt.Errorf("chroot: bind source %q is not an absolute path", b.Source)
		}
		if fi, err := os.Stat(b.Source); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("chroot: bind source %s is not a directory", b.Source)
		}
		t, err := c.resolve(b.Target, true)
		if err != nil {
			return nil, fmt.Errorf("chroot: bind target %s: %w", b.Target, err)
		}
		rel, _ := filepath.Rel(c.root, t)
		c.binds = append(c.binds, Bind{Source: b.Source, Target: "/" + filepath.ToSlash(rel), ReadOnly: b.ReadOnly})
	}
	files, err := local.NewCommunicator(abs, nil)
	if err != nil {
		return nil, err
	}
	c.files = files
	if opts.PolicyRCD {
		if err := c.installPolicyRCD(); err != nil {
			c.Close()
			return nil, err
		}
	}
	if opts.ResolvConf {
		if err := c.lendResolvConf(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// Root returns the tree's absolute path on this machine.
func (c *Comm) Root() string { return c.root }

// Run implements engine.Communicator: cmd.Command runs with /bin/sh -c
// inside the tree, in / , in fresh namespaces. When it exits, whatever it
// left running is killed; cancelling ctx kills it all (SIGTERM, then
// SIGKILL a few seconds later).
func (c *Comm) Run(ctx context.Context, cmd *engine.Command) (int, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return -1, errors.New("chroot: the communicator is closed")
	}
	sp := &spec{
		Root:  c.root,
		Binds: c.binds,
		Dir:   "/",
		Env:   c.env,
		Argv:  []string{"/bin/sh", "-c", cmd.Command},
		Grace: killGrace,
	}
	return run(ctx, sp, cmd.Stdin, cmd.Stdout, cmd.Stderr)
}

// Upload implements engine.Communicator.
func (c *Comm) Upload(ctx context.Context, dst string, src io.Reader, t engine.Transfer) error {
	p, err := c.machinePath(dst, false)
	if err != nil {
		return fmt.Errorf("uploading to %s: %w", dst, err)
	}
	return renamed(c.files.Upload(ctx, p, src, t), p, dst)
}

// UploadDir implements engine.Communicator.
func (c *Comm) UploadDir(ctx context.Context, dst, src string, t engine.Transfer) error {
	p, err := c.machinePath(dst, true)
	if err != nil {
		return fmt.Errorf("uploading %s to %s: %w", src, dst, err)
	}
	return renamed(c.files.UploadDir(ctx, p, src, t), p, dst)
}

// Download implements engine.Communicator.
func (c *Comm) Download(ctx context.Context, src string, dst io.Writer, t engine.Transfer) error {
	p, err := c.machinePath(src, true)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", src, err)
	}
	return renamed(c.files.Download(ctx, p, dst, t), p, src)
}

// DownloadDir implements engine.Communicator.
func (c *Comm) DownloadDir(ctx context.Context, src, dst string, t engine.Transfer) error {
	p, err := c.machinePath(src, true)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", src, err)
	}
	return renamed(c.files.DownloadDir(ctx, p, dst, t), p, src)
}

// renamed rewrites an error naming the resolved path p to name the path
// the caller gave.
func renamed(err error, p, given string) error {
	if err == nil || p == given {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), p, given))
}

// machinePath resolves p as a command in the tree would (see resolve) and
// returns it as a path inside the tree with no symbolic links left on the
// way (the last element too when last is set).
func (c *Comm) machinePath(p string, last bool) (string, error) {
	hp, err := c.resolve(p, last)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(c.root, hp)
	if err != nil {
		return "", err
	}
	return "/" + filepath.ToSlash(rel), nil
}

// hostPath is resolve with the last element followed.
func (c *Comm) hostPath(p string) (string, error) { return c.resolve(p, true) }

// maxLinks bounds the symbolic links followed in one path, as the kernel
// does.
const maxLinks = 40

// resolve returns the path on this machine of the tree path p, following
// symbolic links as the chroot would: a link's absolute target starts from
// the tree's root, and ".." never climbs above it. The last element is
// followed only when last is set. Missing elements are fine: the rest of
// the path is then taken as written.
func (c *Comm) resolve(p string, last bool) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	todo := strings.Split(strings.Trim(path.Clean("/"+filepath.ToSlash(p)), "/"), "/")
	if len(todo) == 1 && todo[0] == "" {
		return c.root, nil
	}
	var done []string
	links := 0
	for len(todo) > 0 {
		el := todo[0]
		todo = todo[1:]
		switch el {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := filepath.Join(append([]string{c.root}, append(done, el)...)...)
		if len(todo) == 0 && !last {
			done = append(done, el)
			break
		}
		fi, err := os.Lstat(cur)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, el)
			continue
		}
		links++
		if links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(cur)
		if err != nil {
			return "", err
		}
		rest := strings.Split(strings.Trim(filepath.ToSlash(target), "/"), "/")
		if strings.HasPrefix(target, "/") {
			done = nil
		}
		todo = append(rest, todo...)
	}
	return filepath.Join(append([]string{c.root}, done...)...), nil
}

// policyRCD refuses every service start (man invoke-rc.d).
const policyRCD = "#!/bin/sh\n# Written by imgbuild while the image is built: services do not start.\nexit 101\n"

func (c *Comm) installPolicyRCD() error {
	p, err := c.hostPath("/usr/sbin/policy-rc.d")
	if err != nil {
		return err
	}
	if _, err := os.Lstat(p); err == nil {
		return nil // the tree's own
	}
	if _, err := os.Stat(filepath.Dir(p)); err != nil {
		return nil // no /usr/sbin: no invoke-rc.d either
	}
	if err := os.WriteFile(p, []byte(policyRCD), 0o755); err != nil {
		return fmt.Errorf("chroot: installing /usr/sbin/policy-rc.d: %w", err)
	}
	c.undo = append(c.undo, func() error {
		if b, err := os.ReadFile(p); err == nil && string(b) == policyRCD {
			return os.Remove(p)
		}
		return nil
	})
	return nil
}

// lendResolvConf puts this machine's resolv.conf in the tree, remembering
// how to put back what was there.
func (c *Comm) lendResolvConf() error {
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil // nothing to lend
	}
	etc, err := c.hostPath("/etc")
	if err != nil {
		return err
	}
	if fi, err := os.Stat(etc); err != nil || !fi.IsDir() {
		return nil
	}
	p := filepath.Join(etc, "resolv.conf")
	var restore func() error
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		restore = func() error { return os.Remove(p) }
	case err != nil:
		return fmt.Errorf("chroot: /etc/resolv.conf: %w", err)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		restore = func() error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Symlink(target, p)
		}
	case fi.Mode().IsRegular():
		orig, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		mode := fi.Mode().Perm()
		restore = func() error { return writeReplace(p, orig, mode) }
	default:
		return nil // a directory? leave it alone
	}
	if err := writeReplace(p, host, 0o644); err != nil {
		_ = restore()
		return fmt.Errorf("chroot: lending /etc/resolv.conf: %w", err)
	}
	c.undo = append(c.undo, func() error {
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			return nil // a package replaced it (or removed it): its choice
		}
		if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, host) {
			return nil
		}
		return restore()
	})
	return nil
}

// writeReplace writes data to p through a temporary file and a rename.
func writeReplace(p string, data []byte, mode fs.FileMode) error {
	tmp := p + ".imgbuild-tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Close ends the session: it puts back what PolicyRCD and ResolvConf
// changed, and removes the directories made to hold uploads that are empty
// again. Commands cannot outlive their Run, so there is nothing to kill.
func (c *Comm) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	for i := len(c.undo) - 1; i >= 0; i-- {
		if err := c.undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
	c.undo = nil
	if c.files != nil {
		if err := c.files.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("chroot: restoring %s: %w", c.root, errors.Join(errs...))
	}
	return nil
}

// bareErr drops the operation and path from a *fs.PathError whose path the
// message already names.
func bareErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// MountsUnder lists the mount points of this process's mount namespace at
// or below dir: what must be unmounted before dir can be removed safely.
func MountsUnder(dir string) ([]string, error) { return journal.MountsUnder(dir) }
