// Package checkpoint keeps debootstrapped trees across builds, so that a
// build whose base is unchanged (a change in its provisioners, say) copies
// the tree instead of running debootstrap again.
//
// An entry is addressed by its Key: everything that changes what
// debootstrap makes (suite, mirror, variant, components, packages,
// architecture, the debootstrap itself). It also records the sha256 of
// the suite's Release file it was made from: when the archive has moved
// on (a point release), the entry is stale and made again. Each entry is
// a directory holding the tree (copied with cp -a --reflink=auto, which
// keeps ownership, modes, devices, hard links and extended attributes),
// its metadata, and the tree's content hash, recorded when the entry is
// made and checked on every use: a damaged entry is discarded, never
// used.
//
// The cache lives in $IMGBUILD_CHECKPOINTS, else
// $XDG_CACHE_HOME/imgbuild/checkpoints (os.UserCacheDir). Entries are
// written under a temporary name and renamed into place while an
// exclusive lock on the cache is held; readers hold a shared lock, so
// concurrent builds never see half an entry. The cache is bounded in size
// ($IMGBUILD_CHECKPOINT_MAX_SIZE, default 10G): adding an entry evicts the
// least recently used ones beyond the bound.
//
// It knows nothing of builds or of the engine: rootfs() gives it keys
// and trees.
package checkpoint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
)

// DirEnv names the cache's directory, overriding the default under the
// user's cache directory.
const DirEnv = "IMGBUILD_CHECKPOINTS"

// MaxSizeEnv bounds the cache's size ("10G", "500M", bytes).
const MaxSizeEnv = "IMGBUILD_CHECKPOINT_MAX_SIZE"

// DefaultMaxSize is the cache's bound when MaxSizeEnv is not set.
const DefaultMaxSize int64 = 10 << 30

// format counts in every key: raise it when the same key would make a
// different tree than before (what rootfs does between debootstrap and
// the checkpoint changed).
const format = "1"

// Key is everything that changes what debootstrap installs.
type Key struct {
	Suite      string   `json:"suite"`
	Mirror     string   `json:"mirror"`
	Variant    string   `json:"variant"`
	Components []string `json:"components"`
	// Packages are debootstrap's --include, sorted and without repeats.
	Packages []string `json:"packages"`
	Arch     string   `json:"arch"`
	// Debootstrap is the sha256 of the debootstrap that ran (its program,
	// its functions and the suite's script).
	Debootstrap string `json:"debootstrap"`
}

// Normalize sorts the packages and drops repeats: the order of
// debootstrap's --include does not change the tree.
func (k Key) Normalize() Key {
	k.Packages = slices.Compact(slices.Sorted(slices.Values(k.Packages)))
	k.Components = slices.Clone(k.Components)
	if k.Packages == nil {
		k.Packages = []string{}
	}
	return k
}

// ID names the key's entry: suite, variant and architecture for people,
// then a hash of the whole key ("bookworm-minbase-amd64-3f9c0a1b2c4d").
func (k Key) ID() string {
	k = k.Normalize()
	data, _ := json.Marshal(struct {
		Format string `json:"format"`
		Key
	}{format, k})
	sum := sha256.Sum256(data)
	return fmt.Sprintf("%s-%s-%s-%s", safe(k.Suite), safe(k.Variant), safe(k.Arch), hex.EncodeToString(sum[:6]))
}

// safe keeps a key field fit for a directory name.
func safe(s string) string {
	if s == "" {
		return "none"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '+' {
			return r
		}
		return '_'
	}, strings.ToLower(s))
}

// Entry is one checkpoint as its metadata records it.
type Entry struct {
	ID  string `json:"id"`
	Key Key    `json:"key"`
	// Archive is "sha256:<hex>" of the suite's Release file the tree was
	// installed from; ArchiveDate its Date field.
	Archive     string `json:"archive"`
	ArchiveDate string `json:"archive_date,omitempty"`
	// Hash is the tree's content hash (HashTree), Size its disk use.
	Hash    string    `json:"hash"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
	// LastUsed is when the entry was last made or restored.
	LastUsed time.Time `json:"-"`
	// Problem says why the entry cannot be used ("" when it can): its
	// metadata is missing or unreadable.
	Problem string `json:"-"`
}

// Cache is a checkpoint directory.
type Cache struct {
	Dir     string
	MaxSize int64 // the bound on the entries' total size
}

// Open returns the cache the environment names: $IMGBUILD_CHECKPOINTS or
// the user's cache directory, bounded by $IMGBUILD_CHECKPOINT_MAX_SIZE.
func Open() (*Cache, error) {
	dir := os.Getenv(DirEnv)
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("no directory for checkpoints: %v; set %s to one", err, DirEnv)
		}
		dir = filepath.Join(base, "imgbuild", "checkpoints")
	}
	if !filepath.IsAbs(dir) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		dir = abs
	}
	c := &Cache{Dir: dir, MaxSize: DefaultMaxSize}
	if s := os.Getenv(MaxSizeEnv); s != "" {
		n, err := qemuimg.ParseSize(s)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: %v", MaxSizeEnv, s, err)
		}
		c.MaxSize = n
	}
	return c, nil
}

// The files of an entry's directory.
const (
	treeDir  = "tree"
	metaFile = "meta.json"
	usedFile = "used" // its modification time is the last use
)

// ErrStale says that an entry was made from an older archive.
var ErrStale = errors.New("checkpoint is stale")

// ErrDamaged says that an entry's tree no longer matches its hash, or its
// metadata cannot be read. The entry has been discarded.
var ErrDamaged = errors.New("checkpoint is damaged")

// Restore copies the tree of key's entry to dst (which must not exist)
// when the entry was made from the same archive, checks the copy against
// the entry's hash and returns the entry. With no entry it returns nil,
// nil. An entry made from another archive is an error wrapping ErrStale;
// a damaged one is discarded, and the error wraps ErrDamaged. dst exists
// only when the entry was restored.
func (c *Cache) Restore(ctx context.Context, key Key, archive, dst string) (*Entry, error) {
	id := key.ID()
	unlock, err := c.lock(ctx, false)
	if err != nil {
		return nil, err
	}
	e, err := c.restore(ctx, id, archive, dst)
	unlock()
	if errors.Is(err, ErrDamaged) {
		if rerr := c.Remove(ctx, id); rerr != nil {
			return nil, fmt.Errorf("%w; removing it: %v", err, rerr)
		}
	}
	return e, err
}

func (c *Cache) restore(ctx context.Context, id, archive, dst string) (*Entry, error) {
	dir := filepath.Join(c.Dir, id)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	e := c.read(id)
	if e.Problem != "" {
		return nil, fmt.Errorf("%w: %s %s", ErrDamaged, dir, e.Problem)
	}
	if e.Archive != archive {
		when := ""
		if e.ArchiveDate != "" {
			when = " of " + e.ArchiveDate
		}
		return nil, fmt.Errorf("%w: checkpoint %s was installed from an older archive (Release%s, %s; the mirror's is now %s)", ErrStale, id, when, short(e.Archive), short(archive))
	}
	if err := copyTree(ctx, filepath.Join(dir, treeDir), dst); err != nil {
		os.RemoveAll(dst)
		return nil, err
	}
	sum, err := HashTree(ctx, dst)
	if err != nil {
		os.RemoveAll(dst)
		return nil, err
	}
	if sum.Hash != e.Hash {
		os.RemoveAll(dst)
		return nil, fmt.Errorf("%w: the tree of checkpoint %s hashes to %s, not the %s recorded when it was made (changed on disk since)", ErrDamaged, id, short(sum.Hash), short(e.Hash))
	}
	now := time.Now()
	_ = os.Chtimes(filepath.Join(dir, usedFile), now, now)
	e.LastUsed = now
	return e, nil
}

// Has returns key's entry when there is one (for the plan: whether a
// build would restore it, the archive unchecked), else nil.
func (c *Cache) Has(key Key) *Entry {
	id := key.ID()
	if _, err := os.Stat(filepath.Join(c.Dir, id)); err != nil {
		return nil
	}
	if e := c.read(id); e.Problem == "" {
		return e
	}
	return nil
}

// short abbreviates a "sha256:<hex>" for messages.
func short(h string) string {
	if p, rest, ok := strings.Cut(h, ":"); ok && len(rest) > 12 {
		return p + ":" + rest[:12]
	}
	return h
}

// read reads an entry's metadata; Problem says what is wrong with it.
func (c *Cache) read(id string) *Entry {
	dir := filepath.Join(c.Dir, id)
	e := &Entry{ID: id}
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		e.Problem = fmt.Sprintf("has no readable %s (%v)", metaFile, err)
		return e
	}
	if err := json.Unmarshal(data, e); err != nil {
		e.ID = id
		e.Problem = "has a damaged " + metaFile + ": " + err.Error()
		return e
	}
	if e.ID != id || e.Hash == "" {
		e.Problem = fmt.Sprintf("has a %s for another entry (id %q)", metaFile, e.ID)
		e.ID = id
		return e
	}
	if fi, err := os.Stat(filepath.Join(dir, usedFile)); err == nil {
		e.LastUsed = fi.ModTime()
	} else {
		e.LastUsed = e.Created
	}
	return e
}

// Saved is what Save did.
type Saved struct {
	Entry   *Entry
	Evicted []*Entry // entries removed to stay within the bound
	// Replaced is the previous entry of the same key (stale or damaged),
	// nil when there was none.
	Replaced *Entry
}

// Save copies the tree src into the cache as key's entry, replacing a
// previous entry of the key, and evicts the least recently used entries
// beyond the bound. A tree larger than the bound is not kept: the error
// says so. archive is the sha256 of the suite's Release file, date its
// Date field.
func (c *Cache) Save(ctx context.Context, key Key, archive, date, src string) (*Saved, error) {
	key = key.Normalize()
	id := key.ID()
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint cache %s: %w", c.Dir, err)
	}
	tmp, err := os.MkdirTemp(c.Dir, fmt.Sprintf(".tmp-%d-", os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("checkpoint cache %s: %w", c.Dir, err)
	}
	defer os.RemoveAll(tmp)
	if err := copyTree(ctx, src, filepath.Join(tmp, treeDir)); err != nil {
		return nil, err
	}
	sum, err := HashTree(ctx, filepath.Join(tmp, treeDir))
	if err != nil {
		return nil, err
	}
	if sum.Size > c.MaxSize {
		return nil, fmt.Errorf("the tree takes %s, more than the checkpoint cache's bound of %s: not kept (raise %s)", Human(sum.Size), Human(c.MaxSize), MaxSizeEnv)
	}
	e := &Entry{ID: id, Key: key, Archive: archive, ArchiveDate: date, Hash: sum.Hash, Size: sum.Size, Created: time.Now().UTC().Truncate(time.Second)}
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, metaFile), append(data, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, usedFile), nil, 0o644); err != nil {
		return nil, err
	}
	unlock, err := c.lock(ctx, true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	out := &Saved{Entry: e}
	dir := filepath.Join(c.Dir, id)
	if _, err := os.Stat(dir); err == nil {
		prev := c.read(id)
		if err := c.discard(id); err != nil {
			return nil, err
		}
		out.Replaced = prev
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("checkpoint cache %s: %w", c.Dir, err)
	}
	e.LastUsed = time.Now()
	out.Evicted, err = c.shrink(c.MaxSize, id)
	return out, err
}

// lock takes the cache's lock, exclusive or shared, waiting until ctx
// ends; it returns the function that lets it go.
func (c *Cache) lock(ctx context.Context, exclusive bool) (func(), error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint cache %s: %w", c.Dir, err)
	}
	fl := flock.New(filepath.Join(c.Dir, ".lock"))
	var ok bool
	var err error
	if exclusive {
		ok, err = fl.TryLockContext(ctx, 100*time.Millisecond)
	} else {
		ok, err = fl.TryRLockContext(ctx, 100*time.Millisecond)
	}
	if err != nil || !ok {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("locking the checkpoint cache %s: %v", c.Dir, err)
	}
	return func() { fl.Unlock() }, nil
}

// Human writes a size as people read it: "1.5 GiB", "230 MiB", "12 KiB".
func Human(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	if f < 10 {
		return fmt.Sprintf("%.1f %s", f, units[i])
	}
	return fmt.Sprintf("%.0f %s", f, units[i])
}
