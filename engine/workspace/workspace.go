// Package workspace keeps paths inside a workspace, the directory a
// description lives in: what a build reads (file(source = ...), scripts,
// load()ed modules, the files checksum() and manifest() hash) and what it
// writes (outputs) may be reached neither through ".." nor through a
// symbolic link that leads out. A link that stays inside is followed.
//
// Resolve explains, before anything runs, where a path leads and through
// which link it would leave; Open and ReadFile read under an os.Root, so
// that a link changed after the check still cannot lead out. The package
// knows nothing of Starlark, of builds or of any platform.
package workspace

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// EscapeError says that a path leads out of the workspace, and how.
type EscapeError struct {
	// Path is the path as given.
	Path string
	// Link is the symbolic link (relative to the workspace) through which
	// it leaves, or "" when ".." alone leads out.
	Link string
	// Target is what Link points to.
	Target string
}

func (e *EscapeError) Error() string {
	if e.Link == "" && filepath.IsAbs(e.Path) {
		return fmt.Sprintf("%q is outside the workspace", e.Path)
	}
	if e.Link == "" {
		return fmt.Sprintf("%q leads out of the workspace through \"..\"", e.Path)
	}
	return fmt.Sprintf("%q leads out of the workspace through the symbolic link %s (→ %s)", e.Path, filepath.ToSlash(e.Link), e.Target)
}

// maxLinks bounds the links one resolution follows, as the kernel does.
const maxLinks = 40

// Rel returns abs relative to root, and whether it lies inside root (root
// itself included). It looks at the names only: no link is followed.
func Rel(root, abs string) (string, bool) {
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	return rel, true
}

// Resolve returns where rel (relative to root; an absolute path inside
// root is accepted too) leads once every symbolic link in it is followed,
// relative to root: "." for root itself. The part of the path that does
// not exist yet is taken as written. It fails with an *EscapeError when
// the path, or a link on the way, leads out of root.
func Resolve(root, rel string) (string, error) {
	given := rel
	if filepath.IsAbs(rel) {
		r, ok := Rel(root, rel)
		if !ok {
			return "", &EscapeError{Path: given}
		}
		rel = r
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	r, err := os.OpenRoot(realRoot)
	if err != nil {
		return "", err
	}
	defer r.Close()

	var done []string // resolved components: a real path inside root
	todo := splitPath(rel)
	links := 0
	missing := false
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", &EscapeError{Path: given}
			}
			done = done[:len(done)-1]
			continue
		}
		next := filepath.Join(append(append([]string(nil), done...), c)...)
		if missing {
			done = append(done, c)
			continue
		}
		fi, err := r.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			missing = true
			done = append(done, c)
			continue
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		links++
		if links > maxLinks {
			return "", fmt.Errorf("%q: too many levels of symbolic links", given)
		}
		target, err := r.Readlink(next)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			in, ok := Rel(realRoot, filepath.Clean(target))
			if !ok {
				in, ok = Rel(root, filepath.Clean(target))
			}
			if !ok {
				return "", &EscapeError{Path: given, Link: next, Target: target}
			}
			done = nil
			todo = append(splitPath(in), todo...)
			continue
		}
		// A relative target is taken from the link's directory; ".." that
		// climbs above root leaves it.
		base := append([]string(nil), done...)
		for _, t := range splitPath(target) {
			switch t {
			case "", ".":
			case "..":
				if len(base) == 0 {
					return "", &EscapeError{Path: given, Link: next, Target: target}
				}
				base = base[:len(base)-1]
			default:
				base = append(base, t)
			}
		}
		// base is written, not yet resolved: resolve it again from root.
		done = nil
		todo = append(base, todo...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return filepath.Join(done...), nil
}

func splitPath(p string) []string {
	return strings.Split(filepath.ToSlash(p), "/")
}

// Open opens rel inside root for reading. Links are followed while they
// stay inside root; one that leads out is an *EscapeError.
func Open(root, rel string) (*os.File, error) {
	resolved, err := Resolve(root, rel)
	if err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// The os.Root keeps a link changed since Resolve from leading out.
	f, err := r.Open(resolved)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, unwrapPathError(err))
	}
	return f, nil
}

// ReadFile reads rel inside root, as Open does.
func ReadFile(root, rel string) ([]byte, error) {
	f, err := Open(root, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Stat returns the file info of what rel leads to inside root.
func Stat(root, rel string) (fs.FileInfo, error) {
	f, err := Open(root, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// OpenInput opens p, an input a description named (absolute, or relative
// to root): through root when it lies inside root, so that a link in it
// is followed only while it stays inside; as it is otherwise (a module's
// file, which was checked against the module's directory when the
// description was evaluated).
func OpenInput(root, p string) (*os.File, error) {
	if root == "" {
		root = "."
	}
	abs := p
	if !filepath.IsAbs(p) {
		abs = filepath.Join(root, p)
	}
	rootAbs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if _, inside := Rel(rootAbs, abs); inside {
		return Open(rootAbs, abs)
	}
	return os.Open(abs)
}
