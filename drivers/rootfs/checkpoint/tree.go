package checkpoint

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// TreeSum is what HashTree found.
type TreeSum struct {
	Hash string // "sha256:<hex>"
	Size int64  // disk use: allocated blocks, each inode counted once
}

// HashTree hashes a tree as a file system holds it: every path with its
// type, permissions, owner, modification time and extended attributes,
// and what it holds (a file's content, a link's target, a device's
// numbers). Two trees with the same hash hold the same files.
func HashTree(ctx context.Context, root string) (TreeSum, error) {
	h := sha256.New()
	seen := map[[2]uint64]bool{}
	var size int64
	buf := make([]byte, 1<<20)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: p, Err: err}
		}
		ino := [2]uint64{uint64(st.Dev), st.Ino}
		if !seen[ino] {
			seen[ino] = true
			size += st.Blocks * 512
		}
		fmt.Fprintf(h, "%q %o %d:%d %d.%09d", rel, st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec)
		if err := hashXattrs(h, p); err != nil {
			return err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			fmt.Fprintf(h, " %d ", st.Size)
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.CopyBuffer(h, f, buf)
			f.Close()
			if err != nil {
				return fmt.Errorf("reading %s: %w", p, err)
			}
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, " -> %q", target)
		case unix.S_IFCHR, unix.S_IFBLK:
			fmt.Fprintf(h, " dev %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		h.Write([]byte{'\n'})
		return nil
	})
	if err != nil {
		return TreeSum{}, fmt.Errorf("hashing the tree %s: %w", root, err)
	}
	return TreeSum{Hash: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: size}, nil
}

// hashXattrs writes a path's extended attributes, sorted by name.
func hashXattrs(w io.Writer, p string) error {
	n, err := unix.Llistxattr(p, nil)
	if err != nil || n == 0 {
		return nil // none, or a file system without them
	}
	list := make([]byte, n)
	n, err = unix.Llistxattr(p, list)
	if err != nil {
		return nil
	}
	var names []string
	for _, name := range bytes.Split(list[:n], []byte{0}) {
		if len(name) > 0 {
			names = append(names, string(name))
		}
	}
	sort.Strings(names)
	for _, name := range names {
		sz, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return &fs.PathError{Op: "getxattr " + name, Path: p, Err: err}
		}
		val := make([]byte, sz)
		sz, err = unix.Lgetxattr(p, name, val)
		if err != nil {
			return &fs.PathError{Op: "getxattr " + name, Path: p, Err: err}
		}
		fmt.Fprintf(w, " x:%q=%x", name, val[:sz])
	}
	return nil
}

// copyTree copies the tree src to dst, which must not exist, keeping
// everything HashTree hashes: cp -a (owners, modes, times, devices, hard
// links, extended attributes), sharing blocks where the file system can
// (--reflink=auto).
func copyTree(ctx context.Context, src, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("copying the tree to %s: it exists already", dst)
	}
	cmd := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", "--", src, dst)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		msg := strings.TrimSpace(string(out))
		if lines := strings.Split(msg, "\n"); len(lines) > 5 {
			msg = strings.Join(lines[:5], "\n") + fmt.Sprintf("\n(and %d more lines)", len(lines)-5)
		}
		return fmt.Errorf("copying the tree %s to %s: cp -a failed (%v): %s", src, dst, err, msg)
	}
	return nil
}
