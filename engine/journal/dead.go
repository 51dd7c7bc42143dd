package journal

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// DeadRun is the journal of a run that died (or ended leaving something),
// claimed by this process: no other cleanup works on it until Release.
type DeadRun struct {
	// ID is the run's id.
	ID string
	// PID is the process the run was; Started when it began.
	PID     int
	Started time.Time
	// Open are the entries it did not remove; Kept those it kept on
	// purpose (--on-error=abort). Both in the order recorded.
	Open, Kept []Entry

	dir  string
	lock *flock.Flock
	mu   sync.Mutex
	f    *os.File // opened for appending on the first Done
}

// Dead claims the journals in dir whose runs are not alive (nothing holds
// their lock), oldest first. Journals of live runs, this process's own
// included, are left alone. A missing dir is no dead runs. Release each.
func Dead(dir string) ([]*DeadRun, error) {
	names, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the journal directory: %w", err)
	}
	var ids []string
	for _, n := range names {
		if id, ok := strings.CutSuffix(n.Name(), journalExt); ok && !n.IsDir() {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var out []*DeadRun
	for _, id := range ids {
		lock := flock.New(filepath.Join(dir, id+lockExt))
		ok, err := lock.TryLock()
		if err != nil {
			releaseAll(out)
			return nil, fmt.Errorf("checking whether run %s is alive: %w", id, err)
		}
		if !ok {
			continue // alive
		}
		d, err := load(dir, id)
		if errors.Is(err, fs.ErrNotExist) {
			lock.Unlock() // removed meanwhile by its run or another cleanup
			os.Remove(lock.Path())
			continue
		}
		if err != nil {
			lock.Unlock()
			releaseAll(out)
			return nil, err
		}
		d.lock = lock
		out = append(out, d)
	}
	return out, nil
}

func releaseAll(runs []*DeadRun) {
	for _, d := range runs {
		d.Release()
	}
}

// load reads a run's journal. A last line cut short (the machine stopped
// mid-write) is ignored; any other bad line is an error naming the file.
func load(dir, id string) (*DeadRun, error) {
	path := filepath.Join(dir, id+journalExt)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d := &DeadRun{ID: id, dir: dir}
	entries := map[int]*Entry{}
	state := map[int]string{} // id → "", "done", "keep"
	var order []int
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var bad error
	for n := 1; sc.Scan(); n++ {
		if bad != nil {
			return nil, bad // a bad line that was not the last
		}
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			bad = fmt.Errorf("journal %s is damaged at line %d (%v): remove it once you have removed what it lists by hand", path, n, err)
			continue
		}
		switch r.Op {
		case "run":
			d.PID, d.Started = r.PID, r.Started
		case "create":
			if r.Entry != nil {
				entries[r.Entry.ID] = r.Entry
				order = append(order, r.Entry.ID)
			}
		case "done", "keep":
			mark := r.Op
			if r.ID != 0 {
				if state[r.ID] == "" {
					state[r.ID] = mark
				}
				continue
			}
			for id, e := range entries {
				if e.Build == r.Build && state[id] == "" {
					state[id] = mark
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading journal %s: %w", path, err)
	}
	for _, id := range order {
		switch state[id] {
		case "":
			d.Open = append(d.Open, *entries[id])
		case "keep":
			d.Kept = append(d.Kept, *entries[id])
		}
	}
	return d, nil
}

// Done marks an entry of the dead run as removed, so that no later cleanup
// looks for it again.
func (d *DeadRun) Done(id int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		f, err := os.OpenFile(filepath.Join(d.dir, d.ID+journalExt), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		d.f = f
	}
	line, _ := json.Marshal(record{Op: "done", ID: id})
	if _, err := d.f.Write(append(line, '\n')); err != nil {
		return err
	}
	d.Open = without(d.Open, id)
	d.Kept = without(d.Kept, id)
	return nil
}

// without returns es without the entry id, in a new slice: callers may be
// going through es.
func without(es []Entry, id int) []Entry {
	var out []Entry
	for _, e := range es {
		if e.ID != id {
			out = append(out, e)
		}
	}
	return out
}

// Release gives the run back: its journal is removed when nothing is left
// in it, else kept for the next cleanup.
func (d *DeadRun) Release() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var err error
	if d.f != nil {
		err = d.f.Close()
		d.f = nil
	}
	if len(d.Open) == 0 && len(d.Kept) == 0 {
		err = errors.Join(err, removeJournal(d.dir, d.ID))
	}
	if d.lock != nil {
		err = errors.Join(err, d.lock.Unlock())
	}
	return err
}
