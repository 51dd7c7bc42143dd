package output

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Set is the outputs one build writes into a workspace. Each is checked
// before the build writes it (Check, Create, Dir, StageDir), written under
// a temporary name beside its place, and moved into place when complete
// (Place). Finish, once the build is over, keeps them and removes what
// they replaced, or, when the build failed, removes them and puts back
// what they replaced.
//
// What an output may replace:
//   - nothing, or an empty directory: always;
//   - what this build placed there on an earlier run (its record under
//     .imgbuild/outputs/ says so): always, without asking;
//   - what imgbuild placed there for another build: only with force;
//   - anything else (a file imgbuild did not make, or put there in place
//     of imgbuild's): never; the error names it.
//
// The check is made again, atomically, when the output is moved into
// place: it goes in with renameat2(RENAME_NOREPLACE) when nothing was
// there, or with RENAME_EXCHANGE when it replaces something, after which
// what was swapped out is checked once more and swapped back if it is not
// what may be replaced. Something that appears while the build runs is
// never replaced silently.
type Set struct {
	workspace string
	build     string
	force     bool
	*state    // shared by the set's views (Forced)
}

// Recorder records what a build is about to create in the run's journal
// (engine.Job is one); see JournalKind.
type Recorder interface {
	Record(kind, what string, where map[string]string) (int, error)
}

// state is what a Set knows of its outputs.
type state struct {
	mu     sync.Mutex
	absent map[string]bool // outputs Check found nothing at
	placed []*placement    // in the order they were placed
	open   []pending       // written, not yet placed

	// id is in the name of every temporary file the set makes and in the
	// records of what it places, so that what a killed build left is
	// found (see JournalKind); journal, if set, records the set before it
	// writes anything.
	id       string
	journal  Recorder
	recorded bool
}

// placement is one output moved into place, until Finish.
type placement struct {
	rel     string // slash-separated, relative to the workspace
	kind    string
	entries map[string]string // what was placed, as recorded
	aside   string            // name beside rel of what it replaced, or ""
	before  *record           // the replaced output's record, if it had one
	done    bool
}

// pending is a temporary file or directory not yet placed.
type pending interface {
	discard() error
	leftover() string
}

// NewSet returns the outputs of the named build in workspace; force lets
// them replace what imgbuild made for another build.
func NewSet(workspace, build string, force bool) *Set {
	ws, err := filepath.Abs(workspace)
	if err != nil {
		ws = workspace
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &Set{workspace: ws, build: build, force: force, state: &state{id: hex.EncodeToString(b[:])}}
}

// Journal makes the set record itself in a run's journal, before it
// writes its first file, so that if the build is killed the next run or
// imgbuild cleanup finds what it left (see JournalKind).
func (s *Set) Journal(j Recorder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.journal = j
}

// recordOnce writes the set's journal entry, the first time it is about
// to write something.
func (s *Set) recordOnce() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == nil || s.recorded {
		return nil
	}
	if _, err := s.journal.Record(JournalKind, "outputs of build "+s.build+" being written", map[string]string{"workspace": s.workspace, "set": s.id}); err != nil {
		return err
	}
	s.recorded = true
	return nil
}

// temp names a temporary file or directory beside name: its "what" is
// "new" (not yet in place) or "old" (replaced, until Finish).
func (s *Set) temp(name, what string) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return "." + name + ".imgbuild-" + what + "-" + s.id + "-" + hex.EncodeToString(b[:])
}

// Forced returns a view of the set whose outputs may also replace what
// imgbuild made for another build when force is set (a post-processor's
// force keyword), besides what the set itself may; it shares the set's
// outputs, so Finish ends them all.
func (s *Set) Forced(force bool) *Set {
	v := *s
	v.force = s.force || force
	return &v
}

// Workspace is the workspace's absolute path.
func (s *Set) Workspace() string { return s.workspace }

// Force reports whether the set may replace another build's outputs.
func (s *Set) Force() bool { return s.force }

// Show returns p relative to the workspace when inside it, else p; "" for
// "".
func (s *Set) Show(p string) string {
	if p == "" {
		return ""
	}
	if !filepath.IsAbs(p) {
		return filepath.ToSlash(p)
	}
	rel, err := filepath.Rel(s.workspace, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return p
	}
	return filepath.ToSlash(rel)
}

// Abs returns the absolute path of rel in the workspace.
func (s *Set) Abs(rel string) string {
	return filepath.Join(s.workspace, filepath.FromSlash(rel))
}

func (s *Set) root() (*os.Root, error) { return os.OpenRoot(s.workspace) }

// target checks rel and opens its parent directory, made if missing.
func (s *Set) target(rel, keyword string) (clean string, r *os.Root, parent *os.File, name string, err error) {
	if err := s.recordOnce(); err != nil {
		return "", nil, nil, "", err
	}
	clean, err = CheckPath(s.workspace, rel)
	if err != nil {
		return "", nil, nil, "", fmt.Errorf("%s: %w", keyword, err)
	}
	r, err = s.root()
	if err != nil {
		return "", nil, nil, "", err
	}
	parent, err = openDir(r, path.Dir(clean))
	if err != nil {
		r.Close()
		return "", nil, nil, "", fmt.Errorf("creating the directory of %s: %w", clean, err)
	}
	return clean, r, parent, path.Base(clean), nil
}

// Check fails when rel may not be written by this build: it holds
// something this set may not replace, or the path is not one an output
// may have (see CheckPath). keyword names the setting, for the message.
func (s *Set) Check(rel, keyword string) error {
	clean, err := CheckPath(s.workspace, rel)
	if err != nil {
		return fmt.Errorf("%s: %w", keyword, err)
	}
	r, err := s.root()
	if err != nil {
		return err
	}
	defer r.Close()
	parent, err := r.Open(path.Dir(clean))
	if errors.Is(err, os.ErrNotExist) {
		s.markAbsent(clean)
		return nil
	}
	if err != nil {
		return unwrapPath(err)
	}
	defer parent.Close()
	v, err := s.classify(r, int(parent.Fd()), path.Base(clean), clean)
	if err != nil {
		return err
	}
	if v.kind == "" {
		s.markAbsent(clean)
	}
	return v.refusal(clean, keyword, false)
}

func (s *Set) markAbsent(rel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.absent == nil {
		s.absent = map[string]bool{}
	}
	s.absent[rel] = true
}

// verdict is what a path holds and whether this set may replace it.
type verdict struct {
	kind    string // "" when nothing is there
	id      string
	empty   bool     // an empty directory
	foreign []string // what imgbuild did not make
	owners  []string // the builds that made it, sorted
	records map[string]*record
	allowed bool
}

// classify looks at name in dirfd, which is the output rel.
func (s *Set) classify(r *os.Root, dirfd int, name, rel string) (*verdict, error) {
	v := &verdict{}
	kind, err := kindAt(dirfd, name)
	if err != nil || kind == "" {
		v.allowed = err == nil
		return v, err
	}
	v.kind = kind
	records, err := ledger{r}.all()
	if err != nil {
		return nil, fmt.Errorf("reading the record of outputs: %w", err)
	}
	v.records = records
	entries := map[string]string{}
	if kind == kindDir {
		if entries, err = walk(dirfd, name); err != nil {
			return nil, fmt.Errorf("looking into %s: %w", rel, err)
		}
	} else if entries["."], err = ident(dirfd, name); err != nil {
		return nil, err
	}
	v.id = entries["."]
	owners := map[string]bool{}
	for sub, id := range entries {
		if sub == "." && kind == kindDir {
			continue // a directory is judged by what it holds
		}
		full := rel
		if sub != "." {
			full = rel + "/" + sub
		}
		switch b, ok := ownerOf(records, full, id); {
		case ok:
			owners[b] = true
		case sub != "." && IsTemporary(path.Base(full)):
			// A temporary file of a run that was stopped at once.
		default:
			v.foreign = append(v.foreign, full)
		}
	}
	v.empty = kind == kindDir && len(entries) == 1
	for b := range owners {
		v.owners = append(v.owners, b)
	}
	slices.Sort(v.owners)
	others := slices.ContainsFunc(v.owners, func(b string) bool { return b != s.build })
	v.allowed = len(v.foreign) == 0 && (!others || s.force)
	return v, nil
}

// ownerOf finds the record that placed the entry full with identity id:
// its own, or that of a directory output holding it.
func ownerOf(records map[string]*record, full, id string) (string, bool) {
	for p := full; ; p = path.Dir(p) {
		if r, ok := records[p]; ok {
			sub := "."
			if p != full {
				sub = strings.TrimPrefix(full, p+"/")
			}
			if r.Entries[sub] == id {
				return r.Build, true
			}
		}
		if p == "." || p == "/" || !strings.Contains(p, "/") {
			return "", false
		}
	}
}

// refusal is the error for a verdict that does not allow replacing, or
// nil. during says the check is the one made when moving into place.
func (v *verdict) refusal(rel, keyword string, during bool) error {
	if v.allowed {
		return nil
	}
	when := ""
	if during {
		when = " appeared while the build ran and"
	}
	if len(v.foreign) > 0 {
		hint := fmt.Sprintf("choose another %s (force replaces only what imgbuild made)", keyword)
		if v.kind == kindFile || (len(v.foreign) == 1 && v.foreign[0] == rel) {
			return fmt.Errorf("%s%s exists and imgbuild did not make it: move it away or %s", rel, when, hint)
		}
		them := "it"
		if len(v.foreign) > 1 {
			them = "them"
		}
		return fmt.Errorf("%s%s holds %s, which imgbuild did not make: move %s away or %s", rel, when, listNames(v.foreign), them, hint)
	}
	var others []string
	for _, b := range v.owners {
		others = append(others, fmt.Sprintf("%q", b))
	}
	builds := "the build " + listNames(others)
	if len(others) > 1 {
		builds = "the builds " + listNames(others)
	}
	return fmt.Errorf("%s%s was made by imgbuild for %s: set force = True (or run with --force) to replace it, or choose another %s", rel, strings.TrimSuffix(when, " and"), builds, keyword)
}

// put moves tmp (a name in parent, beside the output rel) into rel's
// place, checking again what is there, and records it.
func (s *Set) put(r *os.Root, parent *os.File, tmp, rel, keyword string) (pl *placement, err error) {
	fd := int(parent.Fd())
	name := path.Base(rel)
	v, err := s.classify(r, fd, name, rel)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	appeared := s.absent[rel]
	s.mu.Unlock()
	if err := v.refusal(rel, keyword, appeared); err != nil {
		return nil, err
	}
	pl = &placement{rel: rel}
	// Its intent is recorded before it moves, with the name what it
	// replaces will take: a build killed in between leaves what the reaper
	// needs to undo it (see JournalKind). The rename keeps the identities
	// recorded. The intent goes once the record proper is written.
	planned := s.temp(name, "old")
	if err := s.intend(r, fd, tmp, &record{Path: rel, Build: s.build, Set: s.id, Aside: planned, Before: v.records[rel]}); err != nil {
		return nil, err
	}
	defer ledger{r}.dropIntent(rel, s.id)
	if v.kind == "" {
		err := renameNoReplace(fd, tmp, name)
		if errors.Is(err, unix.EEXIST) {
			// Something appeared while the build ran: judge it anew.
			if v, err = s.classify(r, fd, name, rel); err != nil {
				return nil, err
			}
			if err := v.refusal(rel, keyword, true); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, fmt.Errorf("moving %s into place: %w", rel, err)
		}
	}
	if v.kind != "" {
		if err := s.swap(r, fd, tmp, planned, rel, keyword, v, pl); err != nil {
			return nil, err
		}
	}
	if pl.kind, err = kindAt(fd, name); err != nil {
		return nil, err
	}
	if err := s.record(r, fd, pl, nil); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.placed = append(s.placed, pl)
	s.mu.Unlock()
	return pl, nil
}

// testHookBeforeSwap, when set by a test, runs between judging what an
// output replaces and swapping it out: the moment another process could
// change it.
var testHookBeforeSwap func(rel string)

// swap replaces what v found at rel with tmp, atomically, and keeps what
// it replaced beside it until Finish.
func (s *Set) swap(r *os.Root, fd int, tmp, aside, rel, keyword string, v *verdict, pl *placement) error {
	name := path.Base(rel)
	if testHookBeforeSwap != nil {
		testHookBeforeSwap(rel)
	}
	err := exchange(fd, tmp, name)
	switch {
	case errors.Is(err, errNoExchange):
		// No atomic exchange here: move the old aside, then the new in.
		if err := unix.Renameat(fd, name, fd, aside); err != nil {
			return fmt.Errorf("moving the previous %s aside: %w", rel, err)
		}
		if err := renameNoReplace(fd, tmp, name); err != nil {
			unix.Renameat(fd, aside, fd, name)
			return fmt.Errorf("moving %s into place: %w", rel, err)
		}
	case errors.Is(err, unix.ENOENT):
		// It went away meanwhile.
		if err := renameNoReplace(fd, tmp, name); err != nil {
			return fmt.Errorf("moving %s into place: %w", rel, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("moving %s into place: %w", rel, err)
	default:
		// What was swapped out must be what was judged.
		again, err := s.classify(r, fd, tmp, rel)
		if err == nil && (again.refusal(rel, keyword, true) != nil || (v.kind == kindFile && again.id != v.id)) {
			if xerr := exchange(fd, tmp, name); xerr != nil {
				return fmt.Errorf("%s changed while it was being replaced, and could not be put back: it is at %s: %w", rel, path.Join(path.Dir(rel), tmp), xerr)
			}
			if rerr := again.refusal(rel, keyword, true); rerr != nil {
				return rerr
			}
			return fmt.Errorf("%s changed while it was being replaced: run again", rel)
		}
		if err != nil {
			return err
		}
		if err := renameNoReplace(fd, tmp, aside); err != nil {
			return fmt.Errorf("keeping the previous %s aside: %w", rel, err)
		}
	}
	pl.aside = aside
	pl.before = v.records[rel]
	return nil
}

// intend writes rec, with the kind and entries of what is at name in fd,
// as the set's intent to place it.
func (s *Set) intend(r *os.Root, fd int, name string, rec *record) error {
	kind, err := kindAt(fd, name)
	if err != nil {
		return err
	}
	rec.Kind = kind
	if rec.Entries, err = entriesAt(fd, name, kind); err != nil {
		return err
	}
	return ledger{r}.putIntent(rec)
}

// entriesAt is what a record holds of name, of kind, in the directory fd:
// the identity of a file as ".", or of a directory and everything in it.
func entriesAt(fd int, name, kind string) (map[string]string, error) {
	if kind == kindDir {
		return walk(fd, name)
	}
	id, err := ident(fd, name)
	return map[string]string{".": id}, err
}

// record writes pl's record: what is now at its path.
func (s *Set) record(r *os.Root, fd int, pl *placement, coming map[string]string) error {
	var err error
	if pl.entries, err = entriesAt(fd, path.Base(pl.rel), pl.kind); err != nil {
		return err
	}
	if pl.kind == kindDir {
		for sub, id := range coming {
			pl.entries[sub] = id
		}
	}
	// Until Finish, the record also says how to undo the placement, for
	// the reaper of a killed build.
	return ledger{r}.put(&record{Path: pl.rel, Build: s.build, Kind: pl.kind, Entries: pl.entries, Set: s.id, Aside: pl.aside, Before: pl.before})
}

// Finish ends the build's outputs: when it succeeded, what they replaced
// is removed; when it failed, they are removed and what they replaced is
// put back. Temporary files not yet placed are removed either way. It may
// be called more than once.
func (s *Set) Finish(failed bool) error {
	s.mu.Lock()
	open := s.open
	s.open = nil
	placed := slices.Clone(s.placed)
	s.mu.Unlock()
	var errs []error
	for _, p := range open {
		if err := p.discard(); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(placed) - 1; i >= 0; i-- {
		if err := s.finish(placed[i], failed); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// FinishPath ends the output rel alone, as Finish does: for the step that
// placed it, whose cleanup runs when the build is over.
func (s *Set) FinishPath(rel string, failed bool) error {
	s.mu.Lock()
	var mine []*placement
	for _, p := range s.placed {
		if p.rel == path.Clean(filepath.ToSlash(rel)) {
			mine = append(mine, p)
		}
	}
	s.mu.Unlock()
	var errs []error
	for i := len(mine) - 1; i >= 0; i-- {
		errs = append(errs, s.finish(mine[i], failed))
	}
	return errors.Join(errs...)
}

// finish ends one placement.
func (s *Set) finish(pl *placement, failed bool) error {
	s.mu.Lock()
	if pl.done {
		s.mu.Unlock()
		return nil
	}
	pl.done = true
	s.mu.Unlock()
	r, err := s.root()
	if err != nil {
		return err
	}
	defer r.Close()
	parent, err := r.Open(path.Dir(pl.rel))
	if err != nil {
		return unwrapPath(err)
	}
	defer parent.Close()
	fd, name := int(parent.Fd()), path.Base(pl.rel)
	l := ledger{r}
	if !failed {
		// The placement stands: its record no longer says how to undo it.
		if err := l.put(&record{Path: pl.rel, Build: s.build, Kind: pl.kind, Entries: pl.entries}); err != nil {
			return err
		}
		if pl.aside == "" {
			return nil
		}
		if err := removeAll(fd, pl.aside); err != nil {
			return fmt.Errorf("removing the replaced %s: %w", pl.rel, err)
		}
		return s.dropNested(l, pl.rel)
	}
	// The build failed: remove what it placed, put back what it replaced.
	if left, err := removePlaced(fd, name, pl.entries); err != nil {
		return fmt.Errorf("removing %s: %w", pl.rel, err)
	} else if len(left) > 0 {
		kept := ""
		if pl.aside != "" {
			kept = fmt.Sprintf("; the previous %s is kept at %s", pl.rel, path.Join(path.Dir(pl.rel), pl.aside))
		}
		return fmt.Errorf("%s now holds %s, which imgbuild did not make: left in place%s", pl.rel, listNames(prefixed(pl.rel, left)), kept)
	}
	if pl.before != nil {
		err = l.put(pl.before)
	} else {
		err = l.drop(pl.rel)
	}
	if err != nil {
		return err
	}
	if pl.aside != "" {
		if err := renameNoReplace(fd, pl.aside, name); err != nil {
			return fmt.Errorf("putting the previous %s back: %w (it is at %s)", pl.rel, err, path.Join(path.Dir(pl.rel), pl.aside))
		}
	}
	return nil
}

// dropNested removes the records of outputs inside rel that this set did
// not place: they went with what rel replaced.
func (s *Set) dropNested(l ledger, rel string) error {
	records, err := l.all()
	if err != nil {
		return err
	}
	s.mu.Lock()
	mine := map[string]bool{}
	for _, p := range s.placed {
		mine[p.rel] = true
	}
	s.mu.Unlock()
	for p := range records {
		if strings.HasPrefix(p, rel+"/") && !mine[p] {
			if err := l.drop(p); err != nil {
				return err
			}
		}
	}
	return nil
}

func prefixed(rel string, subs []string) []string {
	out := make([]string, len(subs))
	for i, s := range subs {
		out[i] = rel + "/" + s
	}
	return out
}

// removePlaced removes the output name in dirfd, but only the entries of
// it that were placed (as entries lists them): it returns what else it
// found, left in place with the directories holding it.
func removePlaced(dirfd int, name string, entries map[string]string) ([]string, error) {
	kind, err := kindAt(dirfd, name)
	if err != nil || kind == "" {
		return nil, err
	}
	if kind == kindFile {
		id, err := ident(dirfd, name)
		if err != nil {
			return nil, err
		}
		if id != entries["."] {
			return []string{"."}, nil
		}
		return nil, unix.Unlinkat(dirfd, name, 0)
	}
	now, err := walk(dirfd, name)
	if err != nil {
		return nil, err
	}
	var foreign []string
	for sub, id := range now {
		if sub != "." && entries[sub] != id {
			foreign = append(foreign, sub)
		}
	}
	if len(foreign) == 0 {
		return nil, removeAll(dirfd, name)
	}
	// Remove the placed files, deepest first; keep the directories that
	// still hold something.
	subs := make([]string, 0, len(now))
	for sub := range now {
		if sub != "." {
			subs = append(subs, sub)
		}
	}
	slices.SortFunc(subs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	dir, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	isForeign := map[string]bool{}
	for _, f := range foreign {
		for p := f; p != "."; p = path.Dir(p) {
			isForeign[p] = true
		}
	}
	for _, sub := range subs {
		if isForeign[sub] {
			continue
		}
		k, _ := kindAt(dir, sub)
		flag := 0
		if k == kindDir {
			flag = unix.AT_REMOVEDIR
		}
		if err := unix.Unlinkat(dir, sub, flag); err != nil && !errors.Is(err, unix.ENOENT) {
			return nil, err
		}
	}
	slices.Sort(foreign)
	return foreign, nil
}

// Leftovers lists what Finish(true) would remove or put back, for a run
// stopped at once.
func (s *Set) Leftovers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.open {
		out = append(out, p.leftover())
	}
	for _, p := range s.placed {
		if p.done {
			continue
		}
		out = append(out, "output "+p.rel)
		if p.aside != "" {
			out = append(out, "replaced output "+path.Join(path.Dir(p.rel), p.aside)+" (the previous "+p.rel+")")
		}
	}
	return out
}

func (s *Set) addOpen(p pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open = append(s.open, p)
}

func (s *Set) closeOpen(p pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.open, p); i >= 0 {
		s.open = slices.Delete(s.open, i, i+1)
	}
}
