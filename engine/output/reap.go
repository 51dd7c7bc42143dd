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
	intents, err := ledger{r}.intents(id)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	for p, rec := range records {
		if rec.Set == id {
			left.placed = append(left.placed, rec)
			delete(intents, p) // placed, and its record written
		}
	}
	for _, rec := range intents {
		rec.intent = true
		left.placed = append(left.placed, rec)
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
		out = append(out, fmt.Sprintf("output %s, being placed by the killed build", rec.Path))
	}
	for _, t := range left.temps {
		if owned(t, left.placed) {
			continue // put back with its output
		}
		out = append(out, "temporary "+t)
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

// Remove implements journal.Reaper. What the set placed is undone first
// (inner outputs first), then its temporary files are removed, but for one
// that holds what a placement swapped out (killed between the two renames
// of a swap), which is put back.
func (Reaper) Remove(ctx context.Context, e journal.Entry) error {
	r, left, err := findSet(e)
	if err != nil || r == nil {
		return err
	}
	defer r.Close()
	var errs []error
	// Temporaries first (the partial files inside a placed directory
	// among them), but for those beside an output being placed, which may
	// hold what it replaced.
	beside := func(t string) bool {
		for _, rec := range left.placed {
			if path.Dir(t) == path.Dir(rec.Path) && strings.HasPrefix(path.Base(t), "."+path.Base(rec.Path)+".imgbuild-") {
				return true
			}
		}
		return false
	}
	for _, t := range left.temps {
		if !beside(t) {
			errs = append(errs, removeTemp(r, t))
		}
	}
	used := map[string]bool{}
	l := ledger{r}
	for _, rec := range left.placed {
		u, err := undo(r, l, rec, left.temps)
		errs = append(errs, err)
		if u != "" {
			used[u] = true
		}
	}
	for _, t := range left.temps {
		if beside(t) && !used[t] && !owned(t, left.placed) {
			errs = append(errs, removeTemp(r, t))
		}
	}
	return errors.Join(errs...)
}

// removeTemp removes a temporary the set left: one not yet placed, never
// one holding what an output replaced (kept, with a word, when its
// output's record was not written).
func removeTemp(r *os.Root, t string) error {
	if strings.Contains(path.Base(t), ".imgbuild-old-") {
		name := strings.SplitN(strings.TrimPrefix(path.Base(t), "."), ".imgbuild-old-", 2)[0]
		if _, err := r.Lstat(t); err != nil {
			return nil // put back meanwhile
		}
		return fmt.Errorf("what %s held before the killed build replaced it is kept at %s: put it back by hand if the output there is not what you want", path.Join(path.Dir(t), name), t)
	}
	return removeIn(r, t)
}

// removeIn removes the temporary rel, a file or a directory tree.
func removeIn(r *os.Root, rel string) error {
	parent, err := r.Open(path.Dir(rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
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
// replaced, with its record. The record is written before the output
// moves: when the path does not hold what it names, nothing was placed.
// It returns the temporary it put back, if one held the replaced output.
func undo(r *os.Root, l ledger, rec *record, temps []string) (string, error) {
	parent, err := r.Open(path.Dir(rec.Path))
	if errors.Is(err, fs.ErrNotExist) {
		l.dropIntent(rec.Path, rec.Set)
		if rec.intent {
			return "", nil
		}
		return "", l.drop(rec.Path)
	}
	if err != nil {
		return "", unwrapPath(err)
	}
	defer parent.Close()
	fd, name := int(parent.Fd()), path.Base(rec.Path)
	restoreRecord := func() error {
		defer l.dropIntent(rec.Path, rec.Set)
		if rec.intent {
			// The record proper was not written: the one there stands.
			return nil
		}
		if rec.Before != nil {
			return l.put(rec.Before)
		}
		return l.drop(rec.Path)
	}
	kind, err := kindAt(fd, name)
	if err != nil {
		return "", err
	}
	placed := false
	if kind != "" {
		id, err := ident(fd, name)
		if err != nil {
			return "", err
		}
		placed = id == rec.Entries["."]
	}
	aside := rec.Aside
	if _, err := kindAt(fd, aside); aside == "" || err != nil {
		aside = ""
	} else if k, _ := kindAt(fd, aside); k == "" {
		aside = ""
	}
	used := ""
	if placed && aside == "" {
		// Killed between the exchange and the move aside: the replaced
		// output is still under the new one's temporary name.
		for _, t := range temps {
			if path.Dir(t) == path.Dir(rec.Path) && strings.HasPrefix(path.Base(t), "."+name+".imgbuild-new-") {
				aside, used = path.Base(t), t
			}
		}
	}
	if !placed {
		// Never moved into place: only the record, and a replaced output
		// already moved aside, are to put back.
		if err := restoreRecord(); err != nil {
			return "", err
		}
		if aside != "" && kind == "" {
			if err := renameNoReplace(fd, aside, name); err != nil {
				return "", fmt.Errorf("putting the previous %s back: %w (it is at %s)", rec.Path, err, path.Join(path.Dir(rec.Path), aside))
			}
		}
		return "", nil
	}
	if left, err := removePlaced(fd, name, rec.Entries); err != nil {
		return used, fmt.Errorf("removing %s: %w", rec.Path, err)
	} else if len(left) > 0 {
		return used, fmt.Errorf("%s now holds %s, which imgbuild did not make: left in place", rec.Path, listNames(prefixed(rec.Path, left)))
	}
	if err := restoreRecord(); err != nil {
		return used, err
	}
	if aside != "" {
		if err := renameNoReplace(fd, aside, name); err != nil {
			return used, fmt.Errorf("putting the previous %s back: %w (it is at %s)", rec.Path, err, path.Join(path.Dir(rec.Path), aside))
		}
	}
	return used, nil
}
