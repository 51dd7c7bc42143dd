package ssh

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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/panics"
)

// SFTP tuning. OpenSSH's sftp-server takes messages up to 256 KiB and
// serves reads up to 255 KiB, so with it every request moves 255 KiB and up
// to 64 are in flight per file; other servers get the 32 KiB every server
// must take. Trees are copied several files at a time, since a small file
// costs round trips (open, write, set mode, close) more than bytes.
const (
	openSSHPacket   = 255 << 10
	portablePacket  = 32 << 10
	requestsPerFile = 64
	// channelPacket is the largest SSH packet on a session channel, in
	// OpenSSH and x/crypto alike.
	channelPacket = 32 << 10
	treeWorkers   = 16
	// smallFile: a file up to this size is read whole and written with one
	// Write (one request, or concurrent ones above a packet).
	smallFile = 1 << 20
)

// sftpClient is the SFTP session of one connection.
type sftpClient struct {
	*sftp.Client
	session *gossh.Session
}

// newSFTP starts the sftp subsystem on a session of its own, its requests
// packed into full SSH packets (packetJoiner).
func newSFTP(client *gossh.Client, packet int) (*sftpClient, error) {
	s, err := client.NewSession()
	if err != nil {
		return nil, err
	}
	w, err := s.StdinPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	r, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := s.RequestSubsystem("sftp"); err != nil {
		s.Close()
		return nil, err
	}
	c, err := sftp.NewClientPipe(r, &packetJoiner{w: w, packet: channelPacket},
		sftp.MaxPacketUnchecked(packet),
		sftp.MaxConcurrentRequestsPerFile(requestsPerFile),
		sftp.UseConcurrentWrites(true),
		sftp.UseConcurrentReads(true),
	)
	if err != nil {
		s.Close()
		return nil, err
	}
	return &sftpClient{Client: c, session: s}, nil
}

// Close ends the SFTP client and its session.
func (s *sftpClient) Close() error {
	// The session first: the client's Close waits for its reader, which
	// ends when the session does.
	s.session.Close()
	return s.Client.Close()
}

// sftp returns the connection's SFTP client, starting it on first use.
func (c *Communicator) sftp(ctx context.Context) (*conn, *sftp.Client, error) {
	for try := 0; ; try++ {
		cn, err := c.conn(ctx)
		if err != nil {
			return nil, nil, err
		}
		cn.mu.Lock()
		if cn.sftp != nil {
			s := cn.sftp.Client
			cn.mu.Unlock()
			return cn, s, nil
		}
		packet := portablePacket
		if strings.Contains(string(cn.client.ServerVersion()), "OpenSSH") {
			packet = openSSHPacket
		}
		s, err := newSFTP(cn.client, packet)
		if err == nil {
			cn.sftp = s
		}
		cn.mu.Unlock()
		if err == nil {
			return cn, s.Client, nil
		}
		if try == 0 && cn.diedWithin(time.Second) {
			continue
		}
		return nil, nil, c.lost(cn, fmt.Errorf("starting SFTP (is the sftp subsystem enabled in sshd_config?): %w", err))
	}
}

// transferError explains a failed transfer: the context's cause if it was
// cancelled, a lost connection, or err.
func (c *Communicator) transferError(ctx context.Context, cn *conn, err error) error {
	var se *sftp.StatusError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%v: %w", err, context.Cause(ctx))
	case errors.As(err, &se), errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return err // the server answered
	}
	return c.lost(cn, err)
}

// Upload writes src to the file dst on the machine with mode t.Mode (0644
// when 0), reporting progress to t.Progress. If the transfer fails, dst is
// removed.
func (c *Communicator) Upload(ctx context.Context, dst string, src io.Reader, t engine.Transfer) error {
	cn, sc, err := c.sftp(ctx)
	if err != nil {
		return err
	}
	p := newProgress(t.Progress, t.Size)
	defer p.finish()
	if err := uploadFile(ctx, sc, dst, src, t.Size, t.Mode, p); err != nil {
		return c.transferError(ctx, cn, fmt.Errorf("upload to %s: %w", dst, err))
	}
	return nil
}

func uploadFile(ctx context.Context, sc *sftp.Client, dst string, src io.Reader, size int64, mode fs.FileMode, p *progress) (err error) {
	if mode == 0 {
		mode = 0o644
	}
	f, err := sc.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return explain(err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			// Concurrent writes may have left a file with holes.
			_ = sc.Remove(dst)
		}
	}()
	// The mode is set before the data goes in, so that a secret is never
	// readable by others; setuid and setgid bits after, since a write by an
	// unprivileged user clears them.
	if err := f.Chmod(mode.Perm()); err != nil {
		return fmt.Errorf("setting mode %v: %w", mode, err)
	}
	if special := mode & (fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky); special != 0 {
		defer func() {
			if err == nil {
				if err = f.Chmod(mode); err != nil {
					err = fmt.Errorf("setting mode %v: %w", mode, err)
				}
			}
		}()
	}
	r := &ctxReader{ctx: ctx, r: src, p: p}
	if size >= 0 && size <= smallFile {
		// One buffer, written by concurrent requests when above a packet.
		var b bytes.Buffer
		b.Grow(int(size) + 1)
		if _, err := b.ReadFrom(io.LimitReader(r, smallFile+1)); err != nil {
			return err
		}
		buf := b.Bytes()
		if int64(len(buf)) <= smallFile {
			_, err = f.Write(buf)
			return err
		}
		if _, err := f.Write(buf); err != nil {
			return err
		}
	}
	_, err = f.ReadFromWithConcurrency(r, 0)
	return err
}

// explain makes an SFTP error read well: a missing file or a refused
// permission wraps fs.ErrNotExist or fs.ErrPermission.
func explain(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w (does its directory exist?)", fs.ErrNotExist)
	case errors.Is(err, fs.ErrPermission):
		return fs.ErrPermission
	}
	return err
}

// at is explain naming the remote path p.
func at(err error, p string) error {
	return fmt.Errorf("%s: %w", p, explain(err))
}

// Download copies the file src on the machine to dst, reporting progress to
// t.Progress.
func (c *Communicator) Download(ctx context.Context, src string, dst io.Writer, t engine.Transfer) error {
	cn, sc, err := c.sftp(ctx)
	if err != nil {
		return err
	}
	p := newProgress(t.Progress, t.Size)
	defer p.finish()
	if err := downloadFile(ctx, sc, src, dst, p); err != nil {
		return c.transferError(ctx, cn, fmt.Errorf("download of %s: %w", src, err))
	}
	return nil
}

func downloadFile(ctx context.Context, sc *sftp.Client, src string, dst io.Writer, p *progress) error {
	f, err := sc.Open(src)
	if err != nil {
		return explain(err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%s is a directory", src)
		}
		p.setTotal(fi.Size())
	}
	_, err = f.WriteTo(&ctxWriter{ctx: ctx, w: dst, p: p})
	return err
}

// UploadDir copies the contents of the local directory src into dst on the
// machine, creating dst and its subdirectories, keeping the modes of files
// and of the directories it creates (those that exist keep theirs), and
// copying symlinks as links. Progress counts the bytes of all files.
func (c *Communicator) UploadDir(ctx context.Context, dst, src string, t engine.Transfer) error {
	tree, err := localTree(src)
	if err != nil {
		return err
	}
	cn, sc, err := c.sftp(ctx)
	if err != nil {
		return err
	}
	p := newProgress(t.Progress, tree.bytes)
	defer p.finish()
	if err := uploadTree(ctx, sc, dst, src, tree, p); err != nil {
		return c.transferError(ctx, cn, fmt.Errorf("upload of %s to %s: %w", src, dst, err))
	}
	return nil
}

// tree is a directory's contents, by slash-separated path relative to its
// root ("" is the root). Dirs come parents first.
type tree struct {
	dirs  []entry
	files []entry
	links []entry
	bytes int64
}

type entry struct {
	rel    string
	mode   fs.FileMode
	size   int64
	target string // links
}

func localTree(root string) (*tree, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", root)
	}
	t := &tree{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			rel = ""
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			t.links = append(t.links, entry{rel: rel, target: target})
		case d.IsDir():
			t.dirs = append(t.dirs, entry{rel: rel, mode: info.Mode()})
		case d.Type().IsRegular():
			t.files = append(t.files, entry{rel: rel, mode: info.Mode(), size: info.Size()})
			t.bytes += info.Size()
		default:
			return fmt.Errorf("%s is a %v, not a file, directory or symlink: it cannot be copied", p, d.Type())
		}
		return nil
	})
	return t, err
}

func uploadTree(ctx context.Context, sc *sftp.Client, dst, src string, t *tree, p *progress) error {
	// Directories that exist already keep their modes (uploading into /tmp
	// must not chmod /tmp); the ones made here are writable until their
	// files are in, and get their own modes last.
	var made []entry
	for _, d := range t.dirs {
		rp := path.Join(dst, d.rel)
		if fi, err := sc.Stat(rp); err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s exists and is not a directory", rp)
			}
			continue
		}
		var err error
		if d.rel == "" {
			err = sc.MkdirAll(rp)
		} else {
			err = sc.Mkdir(rp)
		}
		if err != nil {
			return at(err, rp)
		}
		if err := sc.Chmod(rp, 0o700); err != nil {
			return at(err, rp)
		}
		made = append(made, d)
	}
	err := parallel(ctx, len(t.files)+len(t.links), func(i int) error {
		if i >= len(t.files) {
			l := t.links[i-len(t.files)]
			rp := path.Join(dst, l.rel)
			if _, err := sc.Lstat(rp); err == nil {
				if err := sc.Remove(rp); err != nil {
					return at(err, rp)
				}
			}
			if err := sc.Symlink(l.target, rp); err != nil {
				return fmt.Errorf("symlink %s -> %s: %w", rp, l.target, err)
			}
			return nil
		}
		f := t.files[i]
		lf, err := os.Open(filepath.Join(src, filepath.FromSlash(f.rel)))
		if err != nil {
			return err
		}
		defer lf.Close()
		rp := path.Join(dst, f.rel)
		if err := uploadFile(ctx, sc, rp, lf, f.size, f.mode, p); err != nil {
			return fmt.Errorf("%s: %w", f.rel, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(made) - 1; i >= 0; i-- {
		rp := path.Join(dst, made[i].rel)
		if err := sc.Chmod(rp, made[i].mode); err != nil {
			return at(err, rp)
		}
	}
	return nil
}

// DownloadDir copies the contents of the directory src on the machine into
// the local directory dst, creating it, keeping the modes of files and of
// the directories it creates, and copying symlinks as links. Progress counts
// the bytes of all files.
func (c *Communicator) DownloadDir(ctx context.Context, src, dst string, t engine.Transfer) error {
	cn, sc, err := c.sftp(ctx)
	if err != nil {
		return err
	}
	tr, err := remoteTree(ctx, sc, src)
	if err != nil {
		return c.transferError(ctx, cn, fmt.Errorf("download of %s: %w", src, err))
	}
	p := newProgress(t.Progress, tr.bytes)
	defer p.finish()
	if err := downloadTree(ctx, sc, src, dst, tr, p); err != nil {
		return c.transferError(ctx, cn, fmt.Errorf("download of %s to %s: %w", src, dst, err))
	}
	return nil
}

func remoteTree(ctx context.Context, sc *sftp.Client, root string) (*tree, error) {
	fi, err := sc.Stat(root)
	if err != nil {
		return nil, explain(err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", root)
	}
	t := &tree{dirs: []entry{{rel: "", mode: fi.Mode()}}}
	for i := 0; i < len(t.dirs); i++ { // t.dirs grows as we go: breadth first
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dir := t.dirs[i].rel
		list, err := sc.ReadDir(path.Join(root, dir))
		if err != nil {
			return nil, at(err, path.Join(root, dir))
		}
		for _, fi := range list {
			rel := path.Join(dir, fi.Name())
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				target, err := sc.ReadLink(path.Join(root, rel))
				if err != nil {
					return nil, at(err, path.Join(root, rel))
				}
				t.links = append(t.links, entry{rel: rel, target: target})
			case fi.IsDir():
				t.dirs = append(t.dirs, entry{rel: rel, mode: fi.Mode()})
			case fi.Mode().IsRegular():
				t.files = append(t.files, entry{rel: rel, mode: fi.Mode(), size: fi.Size()})
				t.bytes += fi.Size()
			default:
				return nil, fmt.Errorf("%s is a %v, not a file, directory or symlink: it cannot be copied", path.Join(root, rel), fi.Mode().Type())
			}
		}
	}
	return t, nil
}

func downloadTree(ctx context.Context, sc *sftp.Client, src, dst string, t *tree, p *progress) error {
	// As in uploadTree: existing directories keep their modes.
	var made []entry
	for _, d := range t.dirs {
		lp := filepath.Join(dst, filepath.FromSlash(d.rel))
		if fi, err := os.Stat(lp); err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s exists and is not a directory", lp)
			}
			continue
		}
		if d.rel == "" {
			if err := os.MkdirAll(filepath.Dir(lp), 0o755); err != nil {
				return err
			}
		}
		if err := os.Mkdir(lp, 0o700); err != nil {
			return err
		}
		made = append(made, d)
	}
	err := parallel(ctx, len(t.files)+len(t.links), func(i int) error {
		if i >= len(t.files) {
			l := t.links[i-len(t.files)]
			lp := filepath.Join(dst, filepath.FromSlash(l.rel))
			if _, err := os.Lstat(lp); err == nil {
				if err := os.Remove(lp); err != nil {
					return err
				}
			}
			return os.Symlink(l.target, lp)
		}
		f := t.files[i]
		lp := filepath.Join(dst, filepath.FromSlash(f.rel))
		lf, err := os.OpenFile(lp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		err = downloadFile(ctx, sc, path.Join(src, f.rel), lf, p)
		if cerr := lf.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(lp, f.mode)
		}
		if err != nil {
			os.Remove(lp)
			return fmt.Errorf("%s: %w", f.rel, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(made) - 1; i >= 0; i-- {
		d := made[i]
		if err := os.Chmod(filepath.Join(dst, filepath.FromSlash(d.rel)), d.mode&(fs.ModePerm|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
	}
	return nil
}

// parallel runs do(0..n-1) on up to treeWorkers goroutines and returns the
// first error; after one, no new work starts.
func parallel(ctx context.Context, n int, do func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for w := 0; w < min(treeWorkers, n); w++ {
		wg.Add(1)
		panics.Go(ctx, func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := do(i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// progress counts bytes moved and reports them at most ten times a second,
// plus once at the end.
type progress struct {
	report func(done, total int64)
	total  atomic.Int64
	done   atomic.Int64

	mu   sync.Mutex
	last time.Time
}

func newProgress(report func(done, total int64), total int64) *progress {
	p := &progress{report: report}
	p.total.Store(total)
	return p
}

// setTotal sets the total when none was known (a single file's download).
func (p *progress) setTotal(n int64) {
	p.total.CompareAndSwap(0, n)
}

func (p *progress) add(n int) {
	if p == nil || p.report == nil {
		return
	}
	done := p.done.Add(int64(n))
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.report(done, p.total.Load())
}

func (p *progress) finish() {
	if p == nil || p.report == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.report(p.done.Load(), p.total.Load())
}

// ctxReader stops a transfer when ctx is done and counts what it reads.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	p   *progress
}

func (r *ctxReader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(b)
	r.p.add(n)
	return n, err
}

// ctxWriter stops a transfer when ctx is done and counts what it writes.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
	p   *progress
}

func (w *ctxWriter) Write(b []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.w.Write(b)
	w.p.add(n)
	return n, err
}
