package output

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// File is an output file being written: a temporary file beside its place
// until Place moves it there.
type File struct {
	*os.File
	set          *Set
	rel, keyword string
	tmp          string // name beside rel
	closed       bool
}

// Create checks the output file rel (as Check does) and opens a temporary
// file beside it, for the caller to write and then Place.
func (s *Set) Create(rel, keyword string) (*File, error) {
	var f *os.File
	clean, tmp, err := s.beside(rel, keyword, func(fd int, tmp string) (err error) {
		f, err = createAt(fd, tmp, 0o644)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := &File{File: f, set: s, rel: clean, keyword: keyword, tmp: tmp}
	s.addOpen(out)
	return out, nil
}

// beside checks the output rel and makes its temporary file or directory
// with mk, in the directory rel goes in; it returns rel cleaned and the
// temporary name.
func (s *Set) beside(rel, keyword string, mk func(dirfd int, tmp string) error) (string, string, error) {
	if err := s.Check(rel, keyword); err != nil {
		return "", "", err
	}
	clean, r, parent, name, err := s.target(rel, keyword)
	if err != nil {
		return "", "", err
	}
	defer r.Close()
	defer parent.Close()
	tmp := s.temp(name, "new")
	if err := mk(int(parent.Fd()), tmp); err != nil {
		return "", "", fmt.Errorf("creating %s: %w", clean, err)
	}
	return clean, tmp, nil
}

// Path is the temporary file's absolute path, for programs that write it
// by name.
func (f *File) Path() string { return f.set.Abs(path.Join(path.Dir(f.rel), f.tmp)) }

// Rel is the output's path, relative to the workspace.
func (f *File) Rel() string { return f.rel }

// Place syncs and closes the file and moves it into place, checking
// again what is there; it returns the output's absolute path.
func (f *File) Place() (string, error) {
	if !f.closed {
		err := f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		f.closed = true
		if err != nil {
			return "", fmt.Errorf("writing %s: %w", f.rel, err)
		}
	}
	if err := f.set.putTemp(f.tmp, f.rel, f.keyword); err != nil {
		return "", err
	}
	f.set.closeOpen(f)
	return f.set.Abs(f.rel), nil
}

// Discard closes and removes the temporary file.
func (f *File) Discard() error {
	f.set.closeOpen(f)
	return f.discard()
}

func (f *File) discard() error {
	if !f.closed {
		f.Close()
		f.closed = true
	}
	err := os.Remove(f.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (f *File) leftover() string { return "file " + path.Join(path.Dir(f.rel), f.tmp) }

// putTemp moves the temporary tmp beside rel into rel's place.
func (s *Set) putTemp(tmp, rel, keyword string) error {
	_, r, parent, _, err := s.target(rel, keyword)
	if err != nil {
		return err
	}
	defer r.Close()
	defer parent.Close()
	_, err = s.put(r, parent, tmp, rel, keyword)
	return err
}

// WriteFile writes data to the output file rel, as Create and Place do,
// and returns its absolute path.
func (s *Set) WriteFile(rel, keyword string, data []byte, perm fs.FileMode) (string, error) {
	f, err := s.Create(rel, keyword)
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err != nil {
		f.Discard()
		return "", fmt.Errorf("writing %s: %w", f.rel, err)
	}
	p, err := f.Place()
	if err != nil {
		f.Discard()
	}
	return p, err
}

// Staged is an output directory being filled: a temporary directory
// beside its place until Place moves it there.
type Staged struct {
	set          *Set
	rel, keyword string
	tmp          string
	placed       bool
}

// StageDir checks the output directory rel (as Check does) and makes an
// empty temporary directory beside it, on the same file system, for the
// caller to fill and then Place.
func (s *Set) StageDir(rel, keyword string) (*Staged, error) {
	clean, tmp, err := s.beside(rel, keyword, func(fd int, tmp string) error {
		return unix.Mkdirat(fd, tmp, 0o755)
	})
	if err != nil {
		return nil, err
	}
	st := &Staged{set: s, rel: clean, keyword: keyword, tmp: tmp}
	s.addOpen(st)
	return st, nil
}

// Path is the temporary directory's absolute path.
func (st *Staged) Path() string { return st.set.Abs(path.Join(path.Dir(st.rel), st.tmp)) }

// Place moves the directory into place, checking again what is there; it
// returns the output's absolute path.
func (st *Staged) Place() (string, error) {
	if err := st.set.putTemp(st.tmp, st.rel, st.keyword); err != nil {
		return "", err
	}
	st.placed = true
	st.set.closeOpen(st)
	return st.set.Abs(st.rel), nil
}

// Discard removes the temporary directory and what it holds.
func (st *Staged) Discard() error {
	st.set.closeOpen(st)
	return st.discard()
}

func (st *Staged) discard() error {
	if st.placed {
		return nil
	}
	return os.RemoveAll(st.Path())
}

func (st *Staged) leftover() string {
	return "directory " + path.Join(path.Dir(st.rel), st.tmp)
}

// WriteDir writes the output directory rel (named by keyword in
// messages): fill fills an empty temporary directory beside its place,
// given by its absolute path, which is moved into place once fill is done.
// On failure nothing is left. It returns the output's absolute path.
func (s *Set) WriteDir(rel, keyword string, fill func(dir string) error) (string, error) {
	st, err := s.StageDir(rel, keyword)
	if err != nil {
		return "", err
	}
	if err := fill(st.Path()); err != nil {
		st.Discard()
		return "", err
	}
	dir, err := st.Place()
	if err != nil {
		st.Discard()
		return "", err
	}
	return dir, nil
}

// PlaceDir moves the directory src (a build's scratch directory) into the
// place of the output directory rel, checking what is there as Check and
// Place do, and returns the output's absolute path. When src is on
// another file system it fails with an error that is syscall.EXDEV: copy
// it into a StageDir instead.
func (s *Set) PlaceDir(src, rel, keyword string) (string, error) {
	if err := s.Check(rel, keyword); err != nil {
		return "", err
	}
	clean, r, parent, name, err := s.target(rel, keyword)
	if err != nil {
		return "", err
	}
	defer r.Close()
	defer parent.Close()
	tmp := s.temp(name, "new")
	abs, err := filepath.Abs(src)
	if err != nil {
		return "", err
	}
	if err := unix.Renameat(unix.AT_FDCWD, abs, int(parent.Fd()), tmp); err != nil {
		if errors.Is(err, unix.EXDEV) {
			return "", fmt.Errorf("moving %s to %s: %w", src, clean, syscall.EXDEV)
		}
		return "", fmt.Errorf("moving %s to %s: %w", src, clean, err)
	}
	if _, err := s.put(r, parent, tmp, clean, keyword); err != nil {
		// Give the scratch directory back to its owner.
		if rerr := unix.Renameat(int(parent.Fd()), tmp, unix.AT_FDCWD, abs); rerr != nil {
			removeAll(int(parent.Fd()), tmp)
		}
		return "", err
	}
	return s.Abs(clean), nil
}
