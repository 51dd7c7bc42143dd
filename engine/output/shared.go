package output

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// maxUpdateTries bounds how often Update starts again because another
// writer changed the file meanwhile.
const maxUpdateTries = 20

// Update changes rel, a file several builds share (a manifest, where each
// keeps its entry): change gets its content (nil when there is none yet)
// and returns the new one, or an error to leave the file as it is. The new
// content replaces the file atomically, and only if the file is still the
// one change read; if another writer replaced it meanwhile, change runs
// again on the newer content. Shared files are not undone by Finish: the
// other builds' entries are in them. A symbolic link is never written
// through.
func (s *Set) Update(rel, keyword string, change func(old []byte) ([]byte, error)) error {
	clean, r, parent, name, err := s.target(rel, keyword)
	if err != nil {
		return err
	}
	defer r.Close()
	defer parent.Close()
	fd := int(parent.Fd())
	for try := 0; try < maxUpdateTries; try++ {
		old, id, err := readAt(fd, name)
		if err != nil {
			return fmt.Errorf("reading %s: %w", clean, err)
		}
		data, err := change(old)
		if err != nil {
			return err
		}
		tmp := s.temp(name, "new")
		f, err := createAt(fd, tmp, 0o644)
		if err != nil {
			return fmt.Errorf("writing %s: %w", clean, err)
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			unix.Unlinkat(fd, tmp, 0)
			return fmt.Errorf("writing %s: %w", clean, err)
		}
		again, err := s.replaceIfSame(fd, tmp, name, id)
		if err != nil {
			unix.Unlinkat(fd, tmp, 0)
			return fmt.Errorf("writing %s: %w", clean, err)
		}
		if !again {
			return parent.Sync()
		}
	}
	return fmt.Errorf("%s kept changing while it was being written (%d tries): is another run writing it?", clean, maxUpdateTries)
}

// replaceIfSame puts tmp in name's place if name is still id ("" for
// absent), and removes what it replaced; again reports that name changed
// meanwhile (tmp is then removed).
func (s *Set) replaceIfSame(fd int, tmp, name, id string) (again bool, err error) {
	if id == "" {
		err := renameNoReplace(fd, tmp, name)
		if errors.Is(err, unix.EEXIST) {
			return true, unix.Unlinkat(fd, tmp, 0)
		}
		return false, err
	}
	err = exchange(fd, tmp, name)
	switch {
	case errors.Is(err, errNoExchange):
		// No atomic exchange here: check, then rename over it.
		if now, err := ident(fd, name); err != nil || now != id {
			return err == nil, unix.Unlinkat(fd, tmp, 0)
		}
		return false, unix.Renameat(fd, tmp, fd, name)
	case errors.Is(err, unix.ENOENT):
		return true, unix.Unlinkat(fd, tmp, 0)
	case err != nil:
		return false, err
	}
	swapped, err := ident(fd, tmp)
	if err != nil {
		return false, err
	}
	if swapped != id {
		if err := exchange(fd, tmp, name); err != nil {
			return false, err
		}
		return true, unix.Unlinkat(fd, tmp, 0)
	}
	return false, unix.Unlinkat(fd, tmp, 0)
}

// readAt reads name in dirfd without following a link, with its ident;
// nil and "" when it does not exist.
func readAt(dirfd int, name string) ([]byte, string, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, "", nil
	case errors.Is(err, unix.ELOOP):
		return nil, "", errors.New("it is a symbolic link: imgbuild does not write through links; remove it or choose another path")
	case err != nil:
		return nil, "", err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	id, err := ident(fd, "")
	if err != nil {
		return nil, "", err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, "", err
	}
	return data, id, nil
}
