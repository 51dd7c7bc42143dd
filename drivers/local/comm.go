package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/ctxio"
)

// Comm is the local communicator: an engine.Communicator whose "machine"
// is one directory of this machine, its root.
//
// Commands run with /bin/sh -c, in the root (their working directory), with
// IMGBUILD_ROOT set to the root's absolute path and the communicator's
// environment added; each runs in a process group of its own that is killed
// when its context is cancelled.
//
// Paths given to Upload, UploadDir, Download and DownloadDir are paths on
// the machine, which is the root: "/etc/x" and "etc/x" both mean
// <root>/etc/x. A path whose ".." would climb above the root, or that goes
// through a symbolic link leading out of it, is an error. Commands, however,
// see this machine's real file system: a provisioner that uploads a file
// and then names it in a command asks CommandPath for the name a command
// must use.
type Comm struct {
	root string
	env  []string

	mu       sync.Mutex
	groups   map[int]bool // process groups left running by commands
	madeDirs []string     // directories made to hold uploads, root-relative
}

var _ engine.Communicator = (*Comm)(nil)

// NewCommunicator returns a communicator rooted at dir (which must exist)
// whose commands also get env.
func NewCommunicator(dir string, env map[string]string) (*Comm, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("local communicator: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("local communicator: %s is not a directory", abs)
	}
	c := &Comm{root: abs, groups: map[int]bool{}}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		c.env = append(c.env, k+"="+env[k])
	}
	c.env = append(c.env, "IMGBUILD_ROOT="+abs)
	return c, nil
}

// Root returns the absolute path of the communicator's directory.
func (c *Comm) Root() string { return c.root }

// rel turns a machine path into a clean path relative to the root ("." for
// the root itself).
func (c *Comm) rel(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("empty path: name a file inside the build's directory")
	}
	q := path.Clean(strings.TrimLeft(filepath.ToSlash(p), "/"))
	if q == "" {
		q = "."
	}
	if q == ".." || strings.HasPrefix(q, "../") {
		return "", fmt.Errorf("path %q leads outside the build's directory %s: \"..\" may not climb above it", p, c.root)
	}
	return q, nil
}

// CommandPath returns the name by which commands reach the machine path p:
// its absolute path inside the root.
func (c *Comm) CommandPath(p string) (string, error) {
	q, err := c.rel(p)
	if err != nil {
		return "", err
	}
	return filepath.Join(c.root, filepath.FromSlash(q)), nil
}

// Run implements engine.Communicator.
func (c *Comm) Run(ctx context.Context, cmd *engine.Command) (int, error) {
	status, left, err := runShell(ctx, c.root, c.env, cmd)
	if left != 0 {
		c.mu.Lock()
		c.groups[left] = true
		c.mu.Unlock()
	}
	return status, err
}

// Close ends the communicator's use: it kills the processes that commands
// left running in the background, and removes the directories it made to
// hold uploads that are empty again (such as the tmp/ a shell script was
// uploaded to and then removed from), so that they do not end up in the
// artifact.
func (c *Comm) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for g := range c.groups {
		killGroup(g)
	}
	c.groups = map[int]bool{}
	if len(c.madeDirs) == 0 {
		return nil
	}
	root, err := os.OpenRoot(c.root)
	if err != nil {
		return err
	}
	defer root.Close()
	// Deepest first, so that a parent is empty once its children are gone.
	sort.Slice(c.madeDirs, func(i, j int) bool { return len(c.madeDirs[i]) > len(c.madeDirs[j]) })
	for _, d := range c.madeDirs {
		_ = root.Remove(d) // fails, as it should, when not empty
	}
	c.madeDirs = nil
	return nil
}

// mkdirAll makes dir (root-relative) and its missing parents, remembering
// which it made.
func (c *Comm) mkdirAll(root *os.Root, dir string) error {
	if dir == "." {
		return nil
	}
	var missing []string
	for d := dir; d != "."; d = path.Dir(d) {
		if _, err := root.Lstat(d); err == nil {
			break
		}
		missing = append(missing, d)
	}
	if err := root.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	c.mu.Lock()
	c.madeDirs = append(c.madeDirs, missing...)
	c.mu.Unlock()
	return nil
}

// Upload implements engine.Communicator. Missing parent directories of dst
// are created.
func (c *Comm) Upload(ctx context.Context, dst string, src io.Reader, t engine.Transfer) error {
	rel, root, err := c.open(dst)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := c.mkdirAll(root, path.Dir(rel)); err != nil {
		return fmt.Errorf("uploading to %s: %w", dst, bare(err))
	}
	var done int64
	if err := writeFile(ctx, root, rel, src, fileMode(t.Mode), t.Size, &done, t.Progress); err != nil {
		return fmt.Errorf("uploading to %s: %w", dst, bare(err))
	}
	return nil
}

// UploadDir implements engine.Communicator. Missing parent directories of
// dst are created.
func (c *Comm) UploadDir(ctx context.Context, dst, src string, t engine.Transfer) error {
	rel, root, err := c.open(dst)
	if err != nil {
		return err
	}
	defer root.Close()
	// Only the parents count as made to hold the upload: dst itself stays
	// even if src was empty.
	if err := c.mkdirAll(root, path.Dir(rel)); err != nil {
		return fmt.Errorf("uploading %s to %s: %w", src, dst, bare(err))
	}
	if err := root.MkdirAll(rel, 0o755); err != nil {
		return fmt.Errorf("uploading %s to %s: %w", src, dst, bare(err))
	}
	sub, err := root.OpenRoot(rel)
	if err != nil {
		return fmt.Errorf("uploading %s to %s: %w", src, dst, bare(err))
	}
	defer sub.Close()
	if err := copyTree(ctx, os.DirFS(src), sub, t.Progress); err != nil {
		return fmt.Errorf("uploading %s to %s: %w", src, dst, err)
	}
	return nil
}

// Download implements engine.Communicator.
func (c *Comm) Download(ctx context.Context, src string, dst io.Writer, t engine.Transfer) error {
	rel, root, err := c.open(src)
	if err != nil {
		return err
	}
	defer root.Close()
	f, err := root.Open(rel)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", src, bare(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("downloading %s: %w", src, bare(err))
	}
	if fi.IsDir() {
		return fmt.Errorf("downloading %s: it is a directory, not a file", src)
	}
	var done int64
	if err := copyCtx(ctx, dst, f, fi.Size(), &done, t.Progress); err != nil {
		return fmt.Errorf("downloading %s: %w", src, bare(err))
	}
	return nil
}

// DownloadDir implements engine.Communicator. dst and its missing parents
// are created.
func (c *Comm) DownloadDir(ctx context.Context, src, dst string, t engine.Transfer) error {
	rel, root, err := c.open(src)
	if err != nil {
		return err
	}
	defer root.Close()
	sub, err := root.OpenRoot(rel)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", src, bare(err))
	}
	defer sub.Close()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("downloading %s to %s: %w", src, dst, bare(err))
	}
	out, err := os.OpenRoot(dst)
	if err != nil {
		return fmt.Errorf("downloading %s to %s: %w", src, dst, bare(err))
	}
	defer out.Close()
	if err := copyTree(ctx, sub.FS(), out, t.Progress); err != nil {
		return fmt.Errorf("downloading %s to %s: %w", src, dst, err)
	}
	return nil
}

// bare drops the operation and the root-relative name from an error about
// the path the caller already names, and explains an escape through a
// symbolic link.
func bare(err error) error {
	var pe *fs.PathError
	for errors.As(err, &pe) {
		err = pe.Err
	}
	if err.Error() == "path escapes from parent" {
		return fmt.Errorf("it leads outside the build's directory through a symbolic link")
	}
	return err
}

func fileMode(m fs.FileMode) fs.FileMode {
	if m == 0 {
		return 0o644
	}
	return m
}

// copyTree copies every file, directory and symbolic link of from into to,
// keeping permissions (directories' are set once their contents are in)
// and symbolic links as links. Progress reports bytes of regular files.
func copyTree(ctx context.Context, from fs.FS, to *os.Root, progress func(done, total int64)) error {
	var total int64
	err := fs.WalkDir(from, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	if err != nil {
		return err
	}
	type dirMode struct {
		name string
		mode fs.FileMode
	}
	var dirs []dirMode
	var done int64
	err = fs.WalkDir(from, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if p != "." {
				if err := to.Mkdir(p, 0o755); err != nil && !os.IsExist(err) {
					return err
				}
			}
			dirs = append(dirs, dirMode{p, fi.Mode().Perm()})
		case d.Type()&fs.ModeSymlink != 0:
			target, err := fs.ReadLink(from, p)
			if err != nil {
				return err
			}
			_ = to.Remove(p)
			if err := to.Symlink(target, p); err != nil {
				return err
			}
		case d.Type().IsRegular():
			f, err := from.Open(p)
			if err != nil {
				return err
			}
			err = writeFile(ctx, to, p, f, fi.Mode().Perm(), total, &done, progress)
			f.Close()
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s is a %s, not a regular file, directory or symbolic link", p, fi.Mode().Type())
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := to.Chmod(dirs[i].name, dirs[i].mode); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes src to name inside root with mode, removing it if the
// copy fails. done accumulates bytes written for progress over total.
func writeFile(ctx context.Context, root *os.Root, name string, src io.Reader, mode fs.FileMode, total int64, done *int64, progress func(done, total int64)) error {
	// A symbolic link in the way is replaced, not written through.
	if fi, err := root.Lstat(name); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		_ = root.Remove(name)
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode.Perm())
	if err != nil {
		return err
	}
	err = copyCtx(ctx, f, src, total, done, progress)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Chmod(name, mode) // not narrowed by the umask
	}
	if err != nil {
		_ = root.Remove(name)
		return err
	}
	return nil
}

// copyCtx copies src to dst, checking ctx between chunks and reporting
// progress after each one.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader, total int64, done *int64, progress func(done, total int64)) error {
	return ctxio.Copy(ctx, dst, src, make([]byte, 64<<10), func(n int) {
		*done += int64(n)
		if progress != nil {
			progress(*done, total)
		}
	})
}

// open resolves the machine path p inside the root and opens the root for
// it; the caller closes the root.
func (c *Comm) open(p string) (string, *os.Root, error) {
	rel, err := c.rel(p)
	if err != nil {
		return "", nil, err
	}
	root, err := os.OpenRoot(c.root)
	if err != nil {
		return "", nil, err
	}
	return rel, root, nil
}
