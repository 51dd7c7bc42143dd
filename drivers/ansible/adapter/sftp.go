package adapter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"sync"
	"syscall"

	"github.com/pkg/sftp"
)

// sftpHandlers serve SFTP requests on the machine's files.
type sftpHandlers struct {
	a   *Adapter
	ctx context.Context

	mu sync.Mutex
	// pending are the files open for writing, by path: a setstat on one
	// (fsetstat, as scp -p sends before closing) applies once it is
	// uploaded.
	pending map[string]*pendingUpload
}

// pendingAt returns the file being written at p, if any.
func (h *sftpHandlers) pendingAt(p string) *pendingUpload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pending[p]
}

func (h *sftpHandlers) done(w *pendingUpload) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending[w.path] == w {
		delete(h.pending, w.path)
	}
}

var (
	_ sftp.FileReader           = (*sftpHandlers)(nil)
	_ sftp.FileWriter           = (*sftpHandlers)(nil)
	_ sftp.PosixRenameFileCmder = (*sftpHandlers)(nil)
	_ sftp.LstatFileLister      = (*sftpHandlers)(nil)
	_ sftp.ReadlinkFileLister   = (*sftpHandlers)(nil)
	_ sftp.RealPathFileLister   = (*sftpHandlers)(nil)
)

// Fileread implements sftp.FileReader: the file is downloaded whole, then
// read at the client's offsets.
func (h *sftpHandlers) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	fi, err := h.a.files.stat(h.ctx, r.Filepath, true)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: r.Filepath, Err: syscall.EISDIR}
	}
	h.a.downloads.Add(1)
	f, err := h.a.files.download(h.ctx, r.Filepath)
	if err != nil {
		h.a.warn("downloading %s: %v", r.Filepath, err)
		return nil, err
	}
	return f, nil
}

// Filewrite implements sftp.FileWriter: writes go to a file of this
// machine, uploaded to the machine when the client closes the handle.
func (h *sftpHandlers) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	flags := r.Pflags()
	mode := openMode(r.Attrs)
	var existing *fileInfo
	var err error
	if flags.Excl || !flags.Trunc || mode == 0 {
		// What is there decides: only a plain "replace it with this mode"
		// (what sftp's put asks) needs no look first.
		existing, err = h.a.files.stat(h.ctx, r.Filepath, true)
	}
	switch {
	case existing != nil && flags.Excl:
		return nil, &fs.PathError{Op: "open", Path: r.Filepath, Err: syscall.EEXIST}
	case existing != nil && existing.IsDir():
		return nil, &fs.PathError{Op: "open", Path: r.Filepath, Err: syscall.EISDIR}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	f, err := os.CreateTemp(h.a.files.tmp, "upload-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	w := &pendingUpload{h: h, f: f, path: r.Filepath, mode: mode}
	h.mu.Lock()
	if h.pending == nil {
		h.pending = map[string]*pendingUpload{}
	}
	h.pending[r.Filepath] = w
	h.mu.Unlock()
	if existing != nil {
		if mode == 0 {
			w.mode = existing.Mode().Perm()
		}
		if !flags.Trunc {
			// Writes land on the file as it is: start from its content.
			old, err := h.a.files.download(h.ctx, r.Filepath)
			if err != nil {
				f.Close()
				return nil, err
			}
			_, err = io.Copy(f, old)
			old.Close()
			if err != nil {
				f.Close()
				return nil, err
			}
		}
	}
	return w, nil
}

// openMode reads the permissions an SFTP open request asks for. The
// request server keeps the attributes without their flags, so only the
// forms OpenSSH's sftp sends are recognised: permissions, then the times
// when it preserves them (it never sends size or owner when opening).
func openMode(attrs []byte) fs.FileMode {
	if len(attrs) != 4 && len(attrs) != 12 {
		return 0
	}
	return fs.FileMode(binary.BigEndian.Uint32(attrs) & 0o7777)
}

// pendingUpload is a file being written by the client.
type pendingUpload struct {
	h    *sftpHandlers
	f    *os.File
	path string
	mode fs.FileMode

	// setstats are attribute changes asked for while the file was open,
	// applied after the upload.
	mu       sync.Mutex
	setstats []*sftp.Request

	once sync.Once
	err  error
}

// later records a setstat asked for while the file is open: its mode is
// the one the file is uploaded with, the rest is applied after.
func (w *pendingUpload) later(r *sftp.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r.AttrFlags().Permissions {
		w.mode = fs.FileMode(r.Attributes().Mode & 0o7777)
	}
	w.setstats = append(w.setstats, r)
}

func (w *pendingUpload) WriteAt(p []byte, off int64) (int, error) { return w.f.WriteAt(p, off) }

// Close uploads the file to the machine.
func (w *pendingUpload) Close() error {
	w.once.Do(func() {
		defer w.f.Close()
		size, err := w.f.Seek(0, io.SeekEnd)
		if err == nil {
			_, err = w.f.Seek(0, io.SeekStart)
		}
		w.h.done(w)
		w.mu.Lock()
		mode, setstats := w.mode, w.setstats
		w.mu.Unlock()
		if err == nil {
			w.h.a.uploads.Add(1)
			err = w.h.a.files.upload(w.h.ctx, w.path, w.f, size, mode)
		}
		for _, r := range setstats {
			if err == nil {
				err = w.h.setstat(r)
			}
		}
		if err != nil {
			w.h.a.warn("uploading %s: %v", w.path, err)
		}
		w.err = err
	})
	return w.err
}

// TransferError implements sftp.TransferError: a client that went away
// mid-write uploads nothing.
func (w *pendingUpload) TransferError(err error) {
	w.once.Do(func() {
		w.f.Close()
		w.h.done(w)
		w.err = err
	})
}

// Filecmd implements sftp.FileCmder.
func (h *sftpHandlers) Filecmd(r *sftp.Request) error {
	h.a.fileOps.Add(1)
	f := h.a.files
	p := r.Filepath
	switch r.Method {
	case "Setstat":
		if w := h.pendingAt(p); w != nil {
			w.later(r)
			return nil
		}
		return h.setstat(r)
	case "Rename":
		// SFTP's rename does not replace an existing file.
		if _, err := f.stat(h.ctx, r.Target, false); err == nil {
			return &fs.PathError{Op: "rename", Path: r.Target, Err: syscall.EEXIST}
		}
		return f.command(h.ctx, "rename", p, "mv", "--", p, r.Target)
	case "Rmdir":
		return f.command(h.ctx, "rmdir", p, "rmdir", "--", p)
	case "Mkdir":
		return f.command(h.ctx, "mkdir", p, "mkdir", "--", p)
	case "Remove":
		return f.command(h.ctx, "remove", p, "rm", "--", p)
	case "Symlink":
		// Filepath is the link's target, Target the link.
		return f.command(h.ctx, "symlink", r.Target, "ln", "-s", "--", p, r.Target)
	case "Link":
		return f.command(h.ctx, "link", r.Target, "ln", "--", p, r.Target)
	}
	return fmt.Errorf("%s is not supported by the imgbuild adapter", r.Method)
}

// PosixRename implements sftp.PosixRenameFileCmder: it replaces the target.
func (h *sftpHandlers) PosixRename(r *sftp.Request) error {
	h.a.fileOps.Add(1)
	return h.a.files.command(h.ctx, "rename", r.Filepath, "mv", "-f", "--", r.Filepath, r.Target)
}

func (h *sftpHandlers) setstat(r *sftp.Request) error {
	f, p := h.a.files, r.Filepath
	flags, attrs := r.AttrFlags(), r.Attributes()
	if flags.Size {
		if err := f.command(h.ctx, "truncate", p, "truncate", "-s", strconv.FormatUint(attrs.Size, 10), "--", p); err != nil {
			return err
		}
	}
	if flags.UidGid {
		if err := f.command(h.ctx, "chown", p, "chown", fmt.Sprintf("%d:%d", attrs.UID, attrs.GID), "--", p); err != nil {
			return err
		}
	}
	if flags.Permissions {
		if err := f.command(h.ctx, "chmod", p, "chmod", strconv.FormatUint(uint64(attrs.Mode&0o7777), 8), "--", p); err != nil {
			return err
		}
	}
	if flags.Acmodtime {
		if err := f.command(h.ctx, "utimes", p, "touch", "-a", "-d", "@"+strconv.FormatUint(uint64(attrs.Atime), 10), "--", p); err != nil {
			return err
		}
		if err := f.command(h.ctx, "utimes", p, "touch", "-m", "-d", "@"+strconv.FormatUint(uint64(attrs.Mtime), 10), "--", p); err != nil {
			return err
		}
	}
	return nil
}

// Filelist implements sftp.FileLister.
func (h *sftpHandlers) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	h.a.fileOps.Add(1)
	switch r.Method {
	case "List":
		list, err := h.a.files.list(h.ctx, r.Filepath)
		if err != nil {
			return nil, err
		}
		return listerAt(list), nil
	case "Stat":
		fi, err := h.a.files.stat(h.ctx, r.Filepath, true)
		if err != nil {
			return nil, err
		}
		return listerAt{fi}, nil
	}
	return nil, fmt.Errorf("%s is not supported by the imgbuild adapter", r.Method)
}

// Lstat implements sftp.LstatFileLister.
func (h *sftpHandlers) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	h.a.fileOps.Add(1)
	fi, err := h.a.files.stat(h.ctx, r.Filepath, false)
	if err != nil {
		return nil, err
	}
	return listerAt{fi}, nil
}

// Readlink implements sftp.ReadlinkFileLister.
func (h *sftpHandlers) Readlink(p string) (string, error) {
	h.a.fileOps.Add(1)
	return h.a.files.readlink(h.ctx, p)
}

// RealPath implements sftp.RealPathFileLister: paths are cleaned against
// "/", links are not resolved.
func (h *sftpHandlers) RealPath(p string) (string, error) {
	return path.Clean("/" + p), nil
}

// listerAt lists file infos.
type listerAt []os.FileInfo

func (l listerAt) ListAt(dst []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[off:])
	if n < len(dst) {
		return n, io.EOF
	}
	return n, nil
}
