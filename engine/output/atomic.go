package output

import (
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// WriteFile replaces the file name with data, atomically: data goes to a
// temporary file in the same directory (made if missing), which is synced
// and renamed over name, and the directory is synced. Readers see the old
// content or the new, never a part, and a crash leaves one or the other.
// The file gets mode perm. It is for imgbuild's own files (the state);
// a build's outputs go through a Set, which also checks what it replaces.
func WriteFile(name string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return writeInDir(d, filepath.Base(name), data, perm, true)
}

// writeInDir writes data to a temporary file in dir and moves it to name:
// over what is there when replace is set, else only if nothing is
// (unix.EEXIST otherwise).
func writeInDir(dir *os.File, name string, data []byte, perm fs.FileMode, replace bool) error {
	fd := int(dir.Fd())
	tmp := tempName(name, "new")
	f, err := createAt(fd, tmp, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if replace {
			err = unix.Renameat(fd, tmp, fd, name)
		} else {
			err = renameNoReplace(fd, tmp, name)
		}
	}
	if err != nil {
		unix.Unlinkat(fd, tmp, 0)
		return err
	}
	return dir.Sync()
}

// createAt creates the new file name in dirfd, with mode perm whatever
// the umask.
func createAt(dirfd int, name string, perm fs.FileMode) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	if err := f.Chmod(perm.Perm()); err != nil {
		f.Close()
		unix.Unlinkat(dirfd, name, 0)
		return nil, err
	}
	return f, nil
}
