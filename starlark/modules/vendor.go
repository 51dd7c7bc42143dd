package modules

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Vendor copies every fetched module of g into the workspace's
// VendorDir, one directory per module name, replacing what was there, so
// that the workspace builds with no cache and no network. Local modules
// are not copied: they are in the workspace's reach already.
func Vendor(g *Graph) (int, error) {
	dir := filepath.Join(g.Root, VendorDir)
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	n := 0
	for _, name := range g.names() {
		m := g.Modules[name]
		if m.Local {
			continue
		}
		if err := copyTree(m.Dir, filepath.Join(tmp, name)); err != nil {
			return 0, fmt.Errorf("vendoring %s: %w", name, err)
		}
		got, err := HashTree(filepath.Join(tmp, name))
		if err != nil {
			return 0, err
		}
		if got != m.Hash {
			return 0, fmt.Errorf("vendoring %s: the copy hashes to %s, not %s", name, got, m.Hash)
		}
		n++
	}
	if err := discard(dir); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return 0, err
	}
	return n, os.Rename(tmp, dir)
}

// copyTree copies the files, symbolic links and executable bits of src
// into dst (skipping .git, as HashTree does).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if d.Name() == ".git" && p != src {
				return filepath.SkipDir
			}
			return os.MkdirAll(target, 0o755)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			mode := os.FileMode(0o644)
			if info.Mode()&0o100 != 0 {
				mode = 0o755
			}
			return copyFile(p, target, mode)
		}
		return fmt.Errorf("%s is a %s: a module holds only files, directories and symbolic links", rel, info.Mode().Type())
	})
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Verify is imgbuild mod verify: one line per fetched module of a graph
// resolved with Options.Check, and whether all are as the lock says.
func Verify(g *Graph) (lines []string, ok bool) {
	ok = true
	names := g.names()
	for n := range g.Problems {
		if _, in := g.Modules[n]; !in {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		m := g.Modules[name]
		if m != nil && m.Local {
			continue
		}
		if p, bad := g.Problems[name]; bad {
			lines = append(lines, fmt.Sprintf("%s: %s", name, p))
			ok = false
			continue
		}
		lines = append(lines, fmt.Sprintf("%s: ok (%s, %s)", name, m.Version(), ShortHash(m.Hash)))
	}
	return lines, ok
}
