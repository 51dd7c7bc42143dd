package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// FileSum is a file's SHA-256 with what its metadata was when it was taken:
// a later check that finds the same size, modification and change times
// and inode trusts the sum without reading the file again (as git's index
// does), so verifying a multi-gigabyte disk image costs one stat.
type FileSum struct {
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	Ctime   int64  `json:"ctime_ns,omitempty"`
	Inode   uint64 `json:"inode,omitempty"`
}

// SumFile returns the sum of the regular file at path. When prev is set
// and the file's metadata still match it, prev's digest is kept unread.
func SumFile(path string, prev *FileSum) (FileSum, error) {
	st, err := os.Stat(path)
	if err != nil {
		return FileSum{}, err
	}
	if !st.Mode().IsRegular() {
		return FileSum{}, fmt.Errorf("%s is not a regular file", path)
	}
	s := FileSum{Size: st.Size(), ModTime: st.ModTime().UnixNano()}
	s.Ctime, s.Inode = changeTimeAndInode(st)
	if prev != nil && prev.Size == s.Size && prev.ModTime == s.ModTime && prev.Ctime == s.Ctime && prev.Inode == s.Inode && prev.SHA256 != "" {
		s.SHA256 = prev.SHA256
		return s, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return FileSum{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return FileSum{}, fmt.Errorf("reading %s: %w", path, err)
	}
	s.SHA256 = hex.EncodeToString(h.Sum(nil))
	return s, nil
}

// digests hashes the files and directories builds read, each once per
// process however many builds read it.
type digests struct {
	mu   sync.Mutex
	done map[string]digestResult
}

type digestResult struct {
	sum string
	err error
}

// of returns "sha256:<hex>" of the file at path, or of the directory tree
// there: every entry's relative path, type and permissions, file contents
// and symbolic links' targets, in sorted order.
func (d *digests) of(path string) (string, error) {
	d.mu.Lock()
	if r, ok := d.done[path]; ok {
		d.mu.Unlock()
		return r.sum, r.err
	}
	d.mu.Unlock()
	sum, err := digestPath(path)
	d.mu.Lock()
	if d.done == nil {
		d.done = map[string]digestResult{}
	}
	d.done[path] = digestResult{sum, err}
	d.mu.Unlock()
	return sum, err
}

func digestPath(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		s, err := SumFile(path, nil)
		return "sha256:" + s.SHA256, err
	}
	h := sha256.New()
	var entries []string
	err = filepath.WalkDir(path, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		entries = append(entries, p)
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(entries)
	for _, p := range entries {
		rel, _ := filepath.Rel(path, p)
		info, err := os.Lstat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%v\x00", filepath.ToSlash(rel), info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "%s\x00", target)
		case info.Mode().IsRegular():
			s, err := SumFile(p, nil)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "%s\x00", s.SHA256)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
