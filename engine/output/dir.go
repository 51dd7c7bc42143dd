package output

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// afterMove, set by tests, runs as soon as Done has moved a file into
// place: a test that panics there plays a build killed at that instant.
var afterMove func()

// Dir is a build's output directory, filled one file at a time (a disk
// image, a kernel, an export): each file is written under a temporary name
// (Begin) and renamed when complete (Done). The directory is taken when
// the first file begins: a fresh one is moved into its place, replacing
// what was there as a Set allows, so that the directory never mixes this
// build's files with an earlier run's.
type Dir struct {
	// Path is absolute; Workspace is the description's root, against
	// which paths are shown.
	Path, Workspace string

	set     *Set
	rel     string // Path relative to the workspace
	keyword string
	err     error // from New: reported by Check and Begin

	mu       sync.Mutex
	pl       *placement
	outputs  []string // files moved into place, absolute
	partials map[string]string
}

// Dir returns the output directory rel of the set's build ("" means
// output/{build}; {build} is replaced by the build's name); keyword names
// the setting, for messages. Its Cleanup ends it, as Finish would.
func (s *Set) Dir(rel, keyword string) *Dir {
	if rel == "" {
		rel = "output/{build}"
	}
	rel = Expand(rel, s.build, "")
	d := &Dir{Workspace: s.workspace, set: s, keyword: keyword, partials: map[string]string{}}
	d.rel, d.err = CheckPath(s.workspace, rel)
	if d.err != nil {
		d.err = fmt.Errorf("%s: %w", keyword, d.err)
		d.Path = filepath.Join(s.workspace, rel)
	} else {
		d.Path = s.Abs(d.rel)
	}
	return d
}

// Show returns p relative to the workspace when inside it, else p; "" for
// "".
func (d *Dir) Show(p string) string { return d.set.Show(p) }

// File is the path of the named file in the directory.
func (d *Dir) File(name string) string { return filepath.Join(d.Path, name) }

// Check fails, before anything is made, when the directory holds what the
// build may not replace (see Set), or its path is not one an output may
// have. force lets it replace what imgbuild made for another build. The
// names of the files to come are not needed: the directory is judged
// whole.
func (d *Dir) Check(keyword string, force bool, names ...string) error {
	if d.err != nil {
		return d.err
	}
	d.keyword = keyword
	d.set = d.set.Forced(force)
	return d.set.Check(d.rel, keyword)
}

// Begin takes the directory if this is its first file, and returns the
// temporary name the named file is written under until Done.
func (d *Dir) Begin(name string) (string, error) {
	if d.err != nil {
		return "", d.err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pl == nil {
		if err := d.take(); err != nil {
			return "", err
		}
	}
	tmp := d.set.temp(name, "new")
	d.partials[name] = tmp
	return d.File(tmp), nil
}

// take moves a fresh, empty directory into the output's place.
func (d *Dir) take() error {
	clean, r, parent, name, err := d.set.target(d.rel, d.keyword)
	if err != nil {
		return err
	}
	defer r.Close()
	defer parent.Close()
	fd := int(parent.Fd())
	tmp := d.set.temp(name, "new")
	if err := unix.Mkdirat(fd, tmp, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", clean, err)
	}
	pl, err := d.set.put(r, parent, tmp, clean, d.keyword)
	if err != nil {
		unix.Unlinkat(fd, tmp, unix.AT_REMOVEDIR)
		return err
	}
	d.pl = pl
	return nil
}

// Done moves the named file into place and returns its final path.
func (d *Dir) Done(name string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	tmp, ok := d.partials[name]
	if !ok {
		return "", fmt.Errorf("%s was not begun", name)
	}
	r, err := d.set.root()
	if err != nil {
		return "", err
	}
	defer r.Close()
	dir, err := r.Open(d.rel)
	if err != nil {
		return "", unwrapPath(err)
	}
	defer dir.Close()
	fd := int(dir.Fd())
	parent, err := r.Open(path.Dir(d.rel))
	if err != nil {
		return "", unwrapPath(err)
	}
	defer parent.Close()
	final := d.File(name)
	// The record lists the file before it moves, under its final name
	// (a rename keeps what identifies it): a build killed between the two
	// leaves nothing its reaper would take for someone else's.
	id, err := ident(fd, tmp)
	if err != nil {
		return "", err
	}
	if err := d.set.record(r, int(parent.Fd()), d.pl, map[string]string{name: id}); err != nil {
		return "", fmt.Errorf("recording %s: %w", d.Show(final), err)
	}
	if err := unix.Renameat(fd, tmp, fd, name); err != nil {
		return "", fmt.Errorf("moving %s into place: %w", d.Show(final), err)
	}
	if afterMove != nil {
		afterMove()
	}
	delete(d.partials, name)
	if !slices.Contains(d.outputs, final) {
		d.outputs = append(d.outputs, final)
	}
	if err := d.set.record(r, int(parent.Fd()), d.pl, nil); err != nil {
		return "", fmt.Errorf("recording %s: %w", d.Show(final), err)
	}
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
	slices.Sort(out)
	return out
}

// Cleanup removes the files being written and ends the directory: kept
// when the build succeeded (what it replaced is removed), removed when it
// failed (what it replaced is put back). It may be called more than once.
func (d *Dir) Cleanup(failed bool) error {
	d.mu.Lock()
	var errs []error
	for name, tmp := range d.partials {
		if err := os.Remove(d.File(tmp)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		delete(d.partials, name)
	}
	pl := d.pl
	if failed {
		d.outputs = nil
	}
	d.mu.Unlock()
	if pl != nil {
		errs = append(errs, d.set.finish(pl, failed))
	}
	return errors.Join(errs...)
}

// Leftovers lists what Cleanup(true) would remove.
func (d *Dir) Leftovers() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, tmp := range d.partials {
		out = append(out, "file "+d.Show(d.File(tmp)))
	}
	for _, p := range d.outputs {
		out = append(out, "file "+d.Show(p))
	}
	if d.pl != nil && !d.pl.done {
		out = append(out, "output directory "+d.rel)
		if d.pl.aside != "" {
			out = append(out, "replaced output directory "+path.Join(path.Dir(d.rel), d.pl.aside))
		}
	}
	slices.Sort(out)
	return out
}
