// Package journal is how imgbuild keeps track of what a run creates, so
// that nothing stays lost when it is killed (kill -9, a crash, a second
// Ctrl-C): before a build creates something (a scratch directory, a
// process, a cloud instance), it records it in the run's journal under
// .imgbuild/journal; when its cleanup has removed it, or the run ended
// normally, the entry is marked done. The next run, and imgbuild cleanup,
// read the journals of the runs that died and remove what they left,
// through the reaper registered for each kind of entry (see engine.Reaper).
//
// A run's journal is two files: <run>.jsonl, one JSON record a line, and
// <run>.lock, which the run holds locked (flock, through gofrs/flock) for as
// long as it lives. A run is dead when nothing holds its lock: the kernel
// releases it when the process dies, however it dies. Claiming a dead run
// takes its lock, so that two cleanups never work on one run.
//
// Records are written with one write each and not synced: they survive the
// process being killed, which is what they are for, not the machine
// losing power.
//
// The package knows nothing of builds' drivers or platforms; Local holds
// the reapers of this machine's own resources (directories, files,
// processes).
package journal

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// Entry is one thing a run is about to create, or created.
type Entry struct {
	// ID numbers the entries of a run, from 1.
	ID int `json:"id"`
	// Run is the run's id.
	Run string `json:"run"`
	// Build is the build that creates it; "" for the run's own.
	Build string `json:"build,omitempty"`
	// Kind names the reaper that can find and remove it: "dir", "file",
	// "processes", "aws", "vsphere-vm"...
	Kind string `json:"kind"`
	// What says what it is, for people: "scratch directory
	// .imgbuild/tmp/imgbuild-web-1a2b".
	What string `json:"what"`
	// Where is what the reaper needs to find it: a path, a region and a
	// tag. Never a secret.
	Where map[string]string `json:"where,omitempty"`
	// Time is when it was recorded.
	Time time.Time `json:"time"`
}

// record is one line of a journal.
type record struct {
	// Op is "run" (the first line: who wrote the journal), "create" (an
	// Entry), "done" (an entry, or all of a build's, was removed by the run
	// itself or a cleanup) or "keep" (kept on purpose, for debugging: only
	// imgbuild cleanup removes it, never the next run).
	Op    string `json:"op"`
	Entry *Entry `json:"entry,omitempty"`
	ID    int    `json:"id,omitempty"`
	Build string `json:"build,omitempty"`
	// For "run":
	PID     int       `json:"pid,omitempty"`
	Started time.Time `json:"started,omitzero"`
}

// File names inside the journal directory.
const (
	journalExt = ".jsonl"
	lockExt    = ".lock"
)

// Dir is the journal directory of a workspace.
func Dir(workspace string) string { return filepath.Join(workspace, ".imgbuild", "journal") }

// EnvVar is set, in the environment of every process a run starts, to the
// run's id: the "processes" reaper finds a dead run's processes by it.
const EnvVar = "IMGBUILD_RUN"

// Journal is the journal of a live run. Its methods are safe for
// concurrent use; a nil *Journal records nothing.
type Journal struct {
	id   string
	dir  string
	lock *flock.Flock

	mu     sync.Mutex
	f      *os.File
	next   int
	open   map[int]*Entry // created and not done
	kept   bool           // some entry was kept
	closed bool
}

// Begin starts the journal of a new run in dir, created if needed: it
// picks the run's id (the time in UTC to the millisecond, and a random
// suffix, so that runs started in the same millisecond differ), takes the
// run's lock and writes the first record.
func Begin(dir string, now time.Time) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the journal directory: %w", err)
	}
	for range 100 {
		id, err := newRunID(now)
		if err != nil {
			return nil, err
		}
		j, err := begin(dir, id, now)
		if errors.Is(err, fs.ErrExist) {
			continue // another run took this id: pick again
		}
		return j, err
	}
	return nil, fmt.Errorf("could not pick a run id in %s: every one tried was taken", dir)
}

func begin(dir, id string, now time.Time) (*Journal, error) {
	lockPath := filepath.Join(dir, id+lockExt)
	// The id is the run's once its lock file is created: exclusively.
	lf, err := os.OpenFile(lockPath, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		return nil, fmt.Errorf("creating the run's lock: %w", err)
	}
	lf.Close()
	lock := flock.New(lockPath)
	if ok, err := lock.TryLock(); err != nil || !ok {
		os.Remove(lockPath)
		return nil, fmt.Errorf("locking %s: %v", lockPath, orBusy(err))
	}
	f, err := os.OpenFile(filepath.Join(dir, id+journalExt), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		lock.Unlock()
		os.Remove(lockPath)
		return nil, fmt.Errorf("creating the run's journal: %w", err)
	}
	j := &Journal{id: id, dir: dir, lock: lock, f: f, open: map[int]*Entry{}}
	if err := j.write(record{Op: "run", PID: os.Getpid(), Started: now.UTC()}); err != nil {
		j.abandon()
		return nil, err
	}
	return j, nil
}

func orBusy(err error) error {
	if err == nil {
		return errors.New("it is held by another process")
	}
	return err
}

// runIDLayout is the time part of a run id; it sorts in time order.
const runIDLayout = "20060102-150405.000"

func newRunID(now time.Time) (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making the run's id: %w", err)
	}
	return now.UTC().Format(runIDLayout) + "-" + hex.EncodeToString(b[:]), nil
}

// ID is the run's id: "20260102-150405.123-1a2b3c".
func (j *Journal) ID() string {
	if j == nil {
		return ""
	}
	return j.id
}

// Record writes e (its ID, Run and Time filled in) before what it stands
// for is created, and returns its ID for Done. An error means the record
// may not have been written: the caller should not create the thing.
func (j *Journal) Record(e Entry) (int, error) {
	if j == nil {
		return 0, nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return 0, fmt.Errorf("the run's journal is closed: not creating %s", e.What)
	}
	j.next++
	e.ID, e.Run, e.Time = j.next, j.id, time.Now().UTC()
	if err := j.writeLocked(record{Op: "create", Entry: &e}); err != nil {
		return 0, fmt.Errorf("recording %s in the run's journal before creating it: %w", e.What, err)
	}
	j.open[e.ID] = &e
	return e.ID, nil
}

// Done marks an entry as removed by the run itself.
func (j *Journal) Done(id int) error {
	if j == nil || id == 0 {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.open[id]; !ok {
		return nil
	}
	delete(j.open, id)
	return j.writeLocked(record{Op: "done", ID: id})
}

// DoneBuild marks every entry of a build so far as removed: the build
// ended and its cleanups all succeeded (or it succeeded, and what is left
// is its artifact).
func (j *Journal) DoneBuild(build string) error {
	return j.markBuild("done", build)
}

// KeepBuild marks every entry of a build so far as kept on purpose
// (--on-error=abort): the next run leaves them, imgbuild cleanup removes
// them.
func (j *Journal) KeepBuild(build string) error {
	return j.markBuild("keep", build)
}

func (j *Journal) markBuild(op, build string) error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	any := false
	for id, e := range j.open {
		if e.Build == build {
			delete(j.open, id)
			any = true
		}
	}
	if !any {
		return nil
	}
	if op == "keep" {
		j.kept = true
	}
	return j.writeLocked(record{Op: op, Build: build})
}

// Open lists the entries not done (nor kept), in the order recorded.
func (j *Journal) Open() []Entry {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]Entry, 0, len(j.open))
	for id := 1; id <= j.next; id++ {
		if e, ok := j.open[id]; ok {
			out = append(out, *e)
		}
	}
	return out
}

// Close ends the run's journal. finished says the run ended normally
// (not stopped at once): the run's own entries ("processes") are then
// done. When nothing is left open or kept, the journal is removed;
// otherwise it stays, and once the lock is released the next run or
// imgbuild cleanup takes care of what it lists.
func (j *Journal) Close(finished bool) error {
	if j == nil {
		return nil
	}
	if finished {
		if err := j.markBuild("done", ""); err != nil {
			return err
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	err := j.f.Close()
	if len(j.open) == 0 && !j.kept {
		err = errors.Join(err, removeJournal(j.dir, j.id))
	}
	return errors.Join(err, j.lock.Unlock())
}

// abandon gives up a journal that could not be started.
func (j *Journal) abandon() {
	j.f.Close()
	removeJournal(j.dir, j.id)
	j.lock.Unlock()
}

// removeJournal removes a run's files: the journal first, so that a
// cleanup that finds the lock free then finds no journal.
func removeJournal(dir, id string) error {
	err := os.Remove(filepath.Join(dir, id+journalExt))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Remove(filepath.Join(dir, id+lockExt)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (j *Journal) write(r record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.writeLocked(r)
}

func (j *Journal) writeLocked(r record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = j.f.Write(append(line, '\n'))
	return err
}
