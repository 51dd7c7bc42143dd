package output

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Dir is a build's output directory.
type Dir struct {
	// Path is absolute; Workspace is the description's root, against
	// which paths are shown.
	Path, Workspace string

	mu       sync.Mutex
	made     bool     // this build created Path
	outputs  []string // files moved into place
	partials []string // files being written
}

// New returns the output directory dir (relative to workspace unless
// absolute; "" means output/<build>).
func New(workspace, dir, build string) (*Dir, error) {
	ws, err := filepath.Abs(workspace)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		dir = filepath.Join("output", build)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(ws, dir)
	}
	return &Dir{Path: filepath.Clean(dir), Workspace: ws}, nil
}

// Show returns p relative to the workspace when inside it, else p; "" for
// "".
func (d *Dir) Show(p string) string {
	if p == "" {
		return ""
	}
	rel, err := filepath.Rel(d.Workspace, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return p
	}
	return filepath.ToSlash(rel)
}

// File is the path of the named file in the directory.
func (d *Dir) File(name string) string { return filepath.Join(d.Path, name) }

// Check fails when the directory would hold the workspace, is not a
// directory, or (unless force) already holds one of names.
func (d *Dir) Check(keyword string, force bool, names ...string) error {
	if rel, err := filepath.Rel(d.Path, d.Workspace); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return fmt.Errorf("%s %q would hold the workspace %s: choose a directory inside it, such as \"output/build\"", keyword, d.Show(d.Path), d.Workspace)
	}
	fi, err := os.Stat(d.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output directory %s: %w", d.Show(d.Path), err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("output directory %s exists and is not a directory: remove it or choose another %s", d.Show(d.Path), keyword)
	}
	if force {
		return nil
	}
	var existing []string
	for _, n := range names {
		if _, err := os.Lstat(d.File(n)); err == nil {
			existing = append(existing, d.Show(d.File(n)))
		}
	}
	switch len(existing) {
	case 0:
	case 1:
		return fmt.Errorf("%s already exists: remove it, choose another %s, or set force = True to replace it", existing[0], keyword)
	default:
		list := strings.Join(existing[:len(existing)-1], ", ") + " and " + existing[len(existing)-1]
		return fmt.Errorf("%s already exist: remove them, choose another %s, or set force = True to replace them", list, keyword)
	}
	return nil
}

// Begin makes the directory if needed and returns the temporary name the
// named file is written under until Done.
func (d *Dir) Begin(name string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := os.Stat(d.Path); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(d.Path, 0o755); err != nil {
			return "", fmt.Errorf("creating %s: %w", d.Show(d.Path), err)
		}
		d.made = true
	}
	tmp := d.File(name) + ".partial"
	d.partials = append(d.partials, tmp)
	return tmp, nil
}

// Done moves the named file into place and returns its final path.
func (d *Dir) Done(name string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	final := d.File(name)
	tmp := final + ".partial"
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	for i, p := range d.partials {
		if p == tmp {
			d.partials = append(d.partials[:i], d.partials[i+1:]...)
			break
		}
	}
	d.outputs = append(d.outputs, final)
	return final, nil
}

// Files lists the files moved into place, as Show gives them, sorted.
func (d *Dir) Files() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.outputs))
	for _, p := range d.outputs {
		out = append(out, d.Show(p))
	}
	sort.Strings(out)
	return out
}

// Cleanup removes the files being written and, when the build failed,
// the files it moved into place and the directory if it made it and it is
// empty.
func (d *Dir) Cleanup(failed bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, p := range d.partials {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	d.partials = nil
	if !failed {
		return errors.Join(errs...)
	}
	for _, p := range d.outputs {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	d.outputs = nil
	if d.made {
		_ = os.Remove(d.Path) // only when empty
		d.made = false
	}
	return errors.Join(errs...)
}

// Leftovers lists what Cleanup(true) would remove.
func (d *Dir) Leftovers() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, p := range append(append([]string(nil), d.partials...), d.outputs...) {
		out = append(out, "file "+d.Show(p))
	}
	return out
}
