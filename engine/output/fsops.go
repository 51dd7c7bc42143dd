package output

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// The operations below work relative to a directory opened under the
// workspace's os.Root, with names that hold no "/": no path they are given
// can lead out of the workspace, whatever links appear meanwhile.

// ident identifies one file or directory, so that one that was removed
// and replaced under the same name is told apart: its inode number and,
// where the file system keeps it, its birth time ("" when it does not
// exist).
// With name "", dirfd itself is the file.
func ident(dirfd int, name string) (string, error) {
	var st unix.Statx_t
	flags := unix.AT_SYMLINK_NOFOLLOW
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	err := unix.Statx(dirfd, name, flags, unix.STATX_INO|unix.STATX_BTIME|unix.STATX_TYPE, &st)
	if errors.Is(err, unix.ENOENT) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	id := fmt.Sprintf("%d", st.Ino)
	if st.Mask&unix.STATX_BTIME != 0 {
		id += fmt.Sprintf(".%d.%d", st.Btime.Sec, st.Btime.Nsec)
	}
	if mode := st.Mode & unix.S_IFMT; mode == unix.S_IFREG || mode == unix.S_IFDIR {
		if gen, ok := generation(dirfd, name); ok {
			id += fmt.Sprintf("g%d", gen)
		}
	}
	return id, nil
}

// fsIocGetversion is FS_IOC_GETVERSION, _IOR('v', 1, long).
const fsIocGetversion = 2<<30 | bits.UintSize/8<<16 | 'v'<<8 | 1

// generation returns the inode's generation number where the file system
// keeps one (ext4, xfs, btrfs): it tells apart two files that were given
// the same inode number one after the other, faster than birth times
// (kept at the kernel clock's coarse resolution) can.
func generation(dirfd int, name string) (uint32, bool) {
	fd := dirfd
	if name != "" {
		var err error
		fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, false
		}
		defer unix.Close(fd)
	}
	gen, err := unix.IoctlGetUint32(fd, fsIocGetversion)
	return gen, err == nil
}

// kindAt says whether name in dirfd is a directory, another kind of file,
// or absent ("").
func kindAt(dirfd int, name string) (string, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return "", nil
	case err != nil:
		return "", err
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return kindDir, nil
	}
	return kindFile, nil
}

// tempName is a fresh name beside name: ".name.imgbuild-new-1a2b3c4d".
func tempName(name, what string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "." + name + ".imgbuild-" + what + "-" + hex.EncodeToString(b[:])
}

// IsTemporary reports whether a file name is one this package writes
// before an output is in place or while a replaced one waits to be
// removed, so that what a killed run left can be found.
func IsTemporary(name string) bool {
	return strings.HasPrefix(name, ".") && (strings.Contains(name, ".imgbuild-new-") || strings.Contains(name, ".imgbuild-old-"))
}

// walk lists, relative to the directory name in dirfd, every entry under
// it (subdirectories' entries too, "." for the directory itself) with its
// ident. Links are listed, not followed.
func walk(dirfd int, name string) (map[string]string, error) {
	out := map[string]string{}
	id, err := ident(dirfd, name)
	if err != nil {
		return nil, err
	}
	out["."] = id
	var visit func(fd int, prefix string) error
	visit = func(fd int, prefix string) error {
		f := os.NewFile(uintptr(fd), prefix)
		defer f.Close()
		entries, err := f.ReadDir(-1)
		if err != nil {
			return err
		}
		for _, e := range entries {
			rel := path.Join(prefix, e.Name())
			id, err := ident(fd, e.Name())
			if err != nil {
				return err
			}
			if id == "" {
				continue // removed meanwhile
			}
			out[rel] = id
			if e.IsDir() {
				sub, err := unix.Openat(fd, e.Name(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err != nil {
					return err
				}
				if err := visit(sub, rel); err != nil {
					return err
				}
			}
		}
		return nil
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := visit(fd, ""); err != nil {
		return nil, err
	}
	return out, nil
}

// renameNoReplace moves from to to in dir, failing with EEXIST when to
// exists, atomically (RENAME_NOREPLACE). On a file system without it, a
// file is linked and unlinked (link fails if to exists); a directory is
// checked, then renamed.
func renameNoReplace(dirfd int, from, to string) error {
	err := unix.Renameat2(dirfd, from, dirfd, to, unix.RENAME_NOREPLACE)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	kind, err := kindAt(dirfd, from)
	if err != nil {
		return err
	}
	if kind == kindFile {
		if err := unix.Linkat(dirfd, from, dirfd, to, 0); err != nil {
			return err
		}
		return unix.Unlinkat(dirfd, from, 0)
	}
	if k, err := kindAt(dirfd, to); err != nil || k != "" {
		if err == nil {
			err = unix.EEXIST
		}
		return err
	}
	return unix.Renameat(dirfd, from, dirfd, to)
}

// exchange swaps a and b in dir atomically (RENAME_EXCHANGE); errNoExchange
// when the file system cannot.
func exchange(dirfd int, a, b string) error {
	err := unix.Renameat2(dirfd, a, dirfd, b, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return errNoExchange
	}
	return err
}

var errNoExchange = errors.New("the file system cannot exchange two names")

// removeAll removes name in dir and everything under it, never following
// a link.
func removeAll(dirfd int, name string) error {
	kind, err := kindAt(dirfd, name)
	if err != nil || kind == "" {
		return err
	}
	if kind == kindFile {
		return unix.Unlinkat(dirfd, name, 0)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAll(fd, n); err != nil {
				break
			}
		}
	}
	f.Close()
	if err != nil {
		return err
	}
	err = unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// openDir opens the directory rel of the workspace root (making it and
// its parents if missing) under an os.Root, and returns it.
func openDir(root *os.Root, rel string) (*os.File, error) {
	if rel != "." {
		if err := root.MkdirAll(rel, 0o755); err != nil {
			return nil, unwrapPath(err)
		}
	}
	f, err := root.Open(rel)
	if err != nil {
		return nil, unwrapPath(err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.IsDir() {
		err = fmt.Errorf("%s is not a directory", rel)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", filepath.ToSlash(pe.Path), pe.Err)
	}
	return err
}

// listNames joins up to three names, then says how many more.
func listNames(names []string) string {
	sort.Strings(names)
	if len(names) > 3 {
		return strings.Join(names[:3], ", ") + fmt.Sprintf(" and %d more", len(names)-3)
	}
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
