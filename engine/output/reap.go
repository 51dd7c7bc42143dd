package output

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/imgbuild/imgbuild/engine/journal"
)

// JournalKind is the kind of the journal entry a Set writes before its
// first file (Journal): the temporary files and directories it makes are
// named with its id, and so are, until the build is over, the records of
// what it placed. Reaper finds and undoes what a killed build's set left:
// its temporary files are removed, what it placed is removed and what that
// replaced is put back, as Finish does when a build fails.
const JournalKind = "outputs"

// Reaper is the journal.Reaper of JournalKind.
type Reaper struct{}

var _ journal.Reaper = Reaper{}

// leftSet is what a set left in a workspace.
type leftSet struct {
	temps  []string  // temporary files and directories, relative paths
	placed []*record // outputs it placed, with how to undo them
}

func findSet(e journal.Entry) (*os.Root, *leftSet, error) {
	ws, id := e.Where["workspace"], e.Where["set"]
	if ws == "" || len(id) < 8 {
		return nil, nil, errors.New("the journal entry names no workspace or set")
	}
	r, err := os.OpenRoot(ws)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &leftSet{}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	left := &leftSet{}
	mark := "-" + id + "-"
	err = fs.WalkDir(r.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone meanwhile, or unreadable: not the set's
		}
		if p == StateDir || p == ".git" {
			return fs.SkipDir
		}
		if p != "." && IsTemporary(d.Name()) && strings.Contains(d.Name(), mark) {
			left.temps = append(left.temps, p)
			if d.IsDir() {
				return fs.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	records, err := ledger{r}.all()
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	for _, rec := range records {
		if rec.Set == id {
			left.placed = append(left.placed, rec)
		}
	}
	slices.SortFunc(left.placed, func(a, b *record) int { return strings.Compare(b.Path, a.Path) }) // inner first
	return r, left, nil
}

// Find implements journal.Reaper.
func (Reaper) Find(ctx context.Context, e journal.Entry) ([]string, error) {
	r, left, err := findSet(e)
	if err != nil || r == nil {
		return nil, err
	}
	defer r.Close()
	var out []string
	for _, rec := range left.placed {
		out = append(out, fmt.Sprintf("%s: output %s, placed by the killed build", e.Build, rec.Path))
	}
	for _, t := range left.temps {
		if owned(t, left.placed) {
			continue // put back with its output
		}
		out = append(out, fmt.Sprintf("%s: temporary %s", e.Build, t))
	}
	return out, nil
}

// owned reports whether the temporary t is what a placement replaced.
func owned(t string, placed []*record) bool {
	for _, rec := range placed {
		if rec.Aside != "" && path.Join(path.Dir(rec.Path), rec.Aside) == t {
			return true
		}
	}
	return false
}

// Remove implements journal.Reaper.
func (Reaper) Remove(ctx context.Context, e journal.Entry) error {
	r, left, err := findSet(e)
	if err != nil || r == nil {
		return err
	}
	defer r.Close()
	var errs []error
	// Unplaced temporaries first ("new": never in place; an "old" one not
	// in a record was swapped out just before the kill and its output's
	// record not written: it cannot be told back, so it is kept).
	for _, t := range left.temps {
		if owned(t, left.placed) {
			continue
		}
		if strings.Contains(path.Base(t), ".imgbuild-old-") {
			errs = append(errs, fmt.Errorf("%s was replaced by the killed build just before it died, and is kept at %s: put it back by hand if the output there is not what you want", strings.SplitN(strings.TrimPrefix(path.Base(t), "."), ".imgbuild-old-", 2)[0], t))
			continue
		}
		errs = append(errs, removeIn(r, t))
	}
	l := ledger{r}
	for _, rec := range left.placed {
		errs = append(errs, undo(r, l, rec))
	}
	return errors.Join(errs...)
}

// removeIn removes the temporary rel, a file or a directory tree.
func removeIn(r *os.Root, rel string) error {
	parent, err := r.Open(path.Dir(rel))
	if err != nil {
		return unwrapPath(err)
	}
	defer parent.Close()
	if err := removeAll(int(parent.Fd()), path.Base(rel)); err != nil {
		return fmt.Errorf("removing %s: %w", rel, err)
	}
	return nil
}

// undo removes what the record says was placed and puts back what it
// replaced, with its record.
func undo(r *os.Root, l ledger, rec *record) error {
	parent, err := r.Open(path.Dir(rec.Path))
	if errors.Is(err, fs.ErrNotExist) {
		return l.drop(rec.Path)
	}
	if err != nil {
		return unwrapPath(err)
	}
	defer parent.Close()
	fd, name := int(parent.Fd()), path.Base(rec.Path)
	if left, err := removePlaced(fd, name, rec.Entries); err != nil {
		return fmt.Errorf("removing %s: %w", rec.Path, err)
	} else if len(left) > 0 {
		return fmt.Errorf("%s now holds %s, which imgbuild did not make: left in place", rec.Path, listNames(prefixed(rec.Path, left)))
	}
	if rec.Before != nil {
		err = l.put(rec.Before)
	} else {
		err = l.drop(rec.Path)
	}
	if err != nil {
		return err
	}
	if rec.Aside != "" {
		if err := renameNoReplace(fd, rec.Aside, name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("putting the previous %s back: %w (it is at %s)", rec.Path, err, path.Join(path.Dir(rec.Path), rec.Aside))
		}
	}
	return nil
}
