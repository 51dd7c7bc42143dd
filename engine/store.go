package engine

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"

	"github.com/imgbuild/imgbuild/engine/filelock"
	"github.com/imgbuild/imgbuild/engine/output"
)

// Store keeps the builds' records where runs share them: a file in the
// workspace (LocalStore, the default) or a bucket many CI runners use
// (drivers/state/s3). Writes never lose another runner's record, and a
// build is locked while it runs, so that runners sharing a store never
// make one image twice.
type Store interface {
	// Where says where the records are, for messages: ".imgbuild/state.json",
	// "s3://bucket/prefix".
	Where() string
	// Load returns every record.
	Load(ctx context.Context) (map[string]*BuildState, error)
	// Get returns one build's record, nil when there is none.
	Get(ctx context.Context, build string) (*BuildState, error)
	// Put replaces one build's record.
	Put(ctx context.Context, build string, rec *BuildState) error
	// Lock takes the build's lock, waiting while another runner holds it
	// (its lease renewed) for at most opts.Timeout; the error for a lock
	// still held then names the holder and since when.
	Lock(ctx context.Context, build string, opts LockOptions) (Lease, error)
	// Close writes what is buffered.
	Close(ctx context.Context) error
}

// LockOptions say who takes a lock and how long to wait for it.
type LockOptions struct {
	// Holder names the runner ("ci-7 pid 4242").
	Holder string
	// Timeout bounds the wait for a lock another runner holds; 0 means
	// DefaultLockTimeout.
	Timeout time.Duration
	// Lease is how long a lock stays held without renewal; a runner that
	// dies loses it after that. 0 means DefaultLease.
	Lease time.Duration
	// Waiting, if set, is told once that the lock is held by another.
	Waiting func(LockInfo)
	// NoWait makes Lock return ErrLockHeld at once when another runner
	// holds the lock (an expired lease is still taken over).
	NoWait bool
}

// ErrLockHeld is Lock's error with NoWait for a lock another runner holds.
var ErrLockHeld = errors.New("the build's lock is held by another runner")

// Defaults of LockOptions.
const (
	DefaultLockTimeout = time.Hour
	DefaultLease       = 2 * time.Minute
)

// LockInfo describes a lock's holder.
type LockInfo struct {
	Holder  string    `json:"holder"`
	Since   time.Time `json:"since"`
	Expires time.Time `json:"expires,omitzero"`
}

// LockedError is the error for a lock still held after the wait.
type LockedError struct {
	Build  string
	Info   LockInfo
	Waited time.Duration
}

func (e *LockedError) Error() string {
	since := e.Info.Since.UTC().Format(time.RFC3339)
	msg := fmt.Sprintf("build %q is locked by %s since %s (%s ago); gave up after waiting --lock-timeout %s", e.Build, e.Info.Holder, since, time.Since(e.Info.Since).Round(time.Second), e.Waited)
	if !e.Info.Expires.IsZero() {
		msg += fmt.Sprintf("; its lease is renewed until %s", e.Info.Expires.UTC().Format(time.RFC3339))
	}
	return msg + ": wait for that run, or raise --lock-timeout"
}

// Lease is a held lock.
type Lease interface {
	// Lost is closed when the lease could not be renewed: another runner
	// may take the build over, so the build should stop.
	Lost() <-chan struct{}
	// Release gives the lock up.
	Release(ctx context.Context) error
}

// StateBackend opens a store from its location (the text after --state,
// "s3://bucket/prefix").
type StateBackend func(ctx context.Context, location string) (Store, error)

// LocalStore keeps records in a workspace's .imgbuild/state.json. A record
// is appended to state.json.log when its build ends (under the file's
// lock, so concurrent runs lose nothing; one append whatever the number of
// builds) and the log is folded into state.json when the run closes the
// store. Build locks are flock(2) locks, which the kernel releases when a
// run dies.
type LocalStore struct {
	Path string
	// Shown is how messages name the file; "" means Path.
	Shown string

	mu   sync.Mutex
	dirt bool
}

// NewLocalStore returns the store of the workspace root.
func NewLocalStore(root string) *LocalStore {
	return &LocalStore{Path: StatePath(root), Shown: filepath.Join(".imgbuild", stateFileName)}
}

// Where implements Store.
func (l *LocalStore) Where() string {
	if l.Shown != "" {
		return l.Shown
	}
	return l.Path
}

// Load implements Store.
func (l *LocalStore) Load(ctx context.Context) (map[string]*BuildState, error) {
	s, err := LoadState(l.Path)
	if err != nil {
		return nil, err
	}
	return s.Builds, nil
}

// Get implements Store.
func (l *LocalStore) Get(ctx context.Context, build string) (*BuildState, error) {
	all, err := l.Load(ctx)
	if err != nil {
		return nil, err
	}
	return all[build], nil
}

// stateLogEntry is one line of the state's log.
type stateLogEntry struct {
	Build  string      `json:"build"`
	Record *BuildState `json:"record"`
}

// Put implements Store: one line appended to the log.
func (l *LocalStore) Put(ctx context.Context, build string, rec *BuildState) error {
	line, err := json.Marshal(stateLogEntry{Build: build, Record: rec})
	if err != nil {
		return err
	}
	err = filelock.With(ctx, l.Path+".lock", func() error {
		if err := os.MkdirAll(filepath.Dir(l.Path), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(l.Path+".log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write(append(line, '\n'))
		return errors.Join(err, f.Sync(), f.Close())
	})
	if err != nil {
		return fmt.Errorf("recording build %q in %s: %w", build, l.Where(), err)
	}
	l.mu.Lock()
	l.dirt = true
	l.mu.Unlock()
	return nil
}

// Close implements Store: the log is folded into the state file.
func (l *LocalStore) Close(ctx context.Context) error {
	l.mu.Lock()
	dirty := l.dirt
	l.dirt = false
	l.mu.Unlock()
	if !dirty {
		return nil
	}
	return UpdateState(ctx, l.Path, func(*State) {})
}

func readStateLog(path string, s *State) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for n := 1; sc.Scan(); n++ {
		var e stateLogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			if !bytes.HasSuffix(data, []byte("\n")) && !sc.Scan() {
				break // a last line cut short by a crash: that build is simply not recorded
			}
			return fmt.Errorf("state log %s is damaged at line %d (%v); remove it to forget the records since the state was last written", path, n, err)
		}
		if e.Build != "" && e.Record != nil {
			s.Builds[e.Build] = e.Record
		}
	}
	return sc.Err()
}

// Lock implements Store with a flock(2) lock on a file under
// .imgbuild/locks/builds, holding the holder's name.
func (l *LocalStore) Lock(ctx context.Context, build string, opts LockOptions) (Lease, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	sum := sha256.Sum256([]byte(build))
	path := filepath.Join(filepath.Dir(l.Path), "locks", "builds", output.SafeName(build, 40)+"-"+hex.EncodeToString(sum[:4])+".lock")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("locking build %q: %w", build, err)
	}
	start := time.Now()
	told := false
	for {
		fl := flock.New(path)
		ok, err := fl.TryLock()
		if err != nil {
			return nil, fmt.Errorf("locking build %q: %w", build, err)
		}
		if ok {
			// The file may have been removed by its last holder between
			// our open and our lock: then the lock guards nothing.
			if sameFile(fl, path) {
				info := LockInfo{Holder: opts.Holder, Since: time.Now().UTC()}
				data, _ := json.Marshal(info)
				_ = os.WriteFile(path, data, 0o644)
				return &localLease{fl: fl, path: path, lost: make(chan struct{})}, nil
			}
			fl.Close()
			continue
		}
		fl.Close()
		var info LockInfo
		if data, err := os.ReadFile(path); err == nil {
			_ = json.Unmarshal(data, &info)
		}
		if info.Holder == "" {
			info.Holder = "another imgbuild run"
		}
		if opts.NoWait {
			return nil, ErrLockHeld
		}
		if !told && opts.Waiting != nil {
			told = true
			opts.Waiting(info)
		}
		if time.Since(start) >= timeout {
			return nil, &LockedError{Build: build, Info: info, Waited: timeout}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(50*time.Millisecond, timeout)):
		}
	}
}

// sameFile reports whether the locked file is still the one at path.
func sameFile(fl *flock.Flock, path string) bool {
	held, err := fl.Stat()
	if err != nil {
		return false
	}
	st, err := os.Stat(path)
	return err == nil && os.SameFile(held, st)
}

type localLease struct {
	fl   *flock.Flock
	path string
	lost chan struct{}
	once sync.Once
}

func (l *localLease) Lost() <-chan struct{} { return l.lost }

func (l *localLease) Release(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		// Removed while still held, so that no waiter locks a file that is
		// about to go; a waiter that opened it checks sameFile.
		if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = rerr
		}
		err = errors.Join(err, l.fl.Close())
	})
	return err
}

// OpenStore opens the store a location names: "" is the workspace's
// state file; "scheme://..." goes to the backend registered for scheme.
func OpenStore(ctx context.Context, reg *Registry, root, location string) (Store, error) {
	if location == "" {
		return NewLocalStore(root), nil
	}
	scheme, _, ok := strings.Cut(location, "://")
	if !ok {
		return nil, fmt.Errorf("--state %q: write it as s3://bucket/prefix (or leave it out for %s)", location, filepath.Join(".imgbuild", stateFileName))
	}
	open, ok := reg.States[scheme]
	if !ok {
		var have []string
		for k := range reg.States {
			have = append(have, k+"://")
		}
		return nil, fmt.Errorf("--state %q: no state backend for %s:// (this imgbuild has %s)", location, scheme, strings.Join(append(have, "the workspace file"), ", "))
	}
	return open(ctx, location)
}
