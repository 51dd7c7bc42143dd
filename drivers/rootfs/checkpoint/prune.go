package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// List returns the cache's entries, most recently used first. An entry
// whose metadata cannot be read is listed with its Problem. A cache that
// does not exist yet has no entries.
func (c *Cache) List(ctx context.Context) ([]*Entry, error) {
	if _, err := os.Stat(c.Dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	unlock, err := c.lock(ctx, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return c.list()
}

func (c *Cache) list() ([]*Entry, error) {
	dirs, err := os.ReadDir(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("listing the checkpoint cache: %w", err)
	}
	var out []*Entry
	for _, d := range dirs {
		if !d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			continue
		}
		out = append(out, c.read(d.Name()))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastUsed.After(out[j].LastUsed) })
	return out, nil
}

// Remove discards the entry id, if there is one.
func (c *Cache) Remove(ctx context.Context, id string) error {
	unlock, err := c.lock(ctx, true)
	if err != nil {
		return err
	}
	defer unlock()
	return c.discard(id)
}

// discard removes an entry: renamed out of the way first, so that no
// reader ever finds half of one. The caller holds the exclusive lock.
func (c *Cache) discard(id string) error {
	dir := filepath.Join(c.Dir, id)
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	trash, err := os.MkdirTemp(c.Dir, fmt.Sprintf(".trash-%d-", os.Getpid()))
	if err != nil {
		return fmt.Errorf("removing checkpoint %s: %w", id, err)
	}
	if err := os.Rename(dir, filepath.Join(trash, id)); err != nil {
		os.Remove(trash)
		return fmt.Errorf("removing checkpoint %s: %w", id, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("removing checkpoint %s (now in %s): %w", id, trash, err)
	}
	return nil
}

// shrink evicts the least recently used entries, other than keep, until
// the entries take at most max; entries that cannot be read go first. It
// also removes what builds that died left behind. The caller holds the
// exclusive lock.
func (c *Cache) shrink(max int64, keep string) ([]*Entry, error) {
	c.removeOrphans()
	entries, err := c.list()
	if err != nil {
		return nil, err
	}
	var total int64
	for _, e := range entries {
		total += e.Size
	}
	// Damaged entries first, then from the least recently used.
	sort.SliceStable(entries, func(i, j int) bool {
		if (entries[i].Problem != "") != (entries[j].Problem != "") {
			return entries[i].Problem != ""
		}
		return entries[i].LastUsed.Before(entries[j].LastUsed)
	})
	var evicted []*Entry
	for _, e := range entries {
		if total <= max && e.Problem == "" {
			break
		}
		if e.ID == keep {
			continue
		}
		if err := c.discard(e.ID); err != nil {
			return evicted, err
		}
		total -= e.Size
		evicted = append(evicted, e)
	}
	return evicted, nil
}

// removeOrphans removes the temporary directories of processes that are
// gone (a build killed while it saved a checkpoint).
func (c *Cache) removeOrphans() {
	dirs, _ := os.ReadDir(c.Dir)
	for _, d := range dirs {
		name := d.Name()
		rest, ok := strings.CutPrefix(name, ".tmp-")
		if !ok {
			rest, ok = strings.CutPrefix(name, ".trash-")
		}
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() && strings.HasPrefix(name, ".tmp-") || alive(pid) {
			continue
		}
		os.RemoveAll(filepath.Join(c.Dir, name))
	}
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// PruneOptions says which entries Prune removes: all of them, those not
// used for OlderThan, and the least recently used beyond MaxSize (when
// positive). Entries that cannot be read are always removed.
type PruneOptions struct {
	All       bool
	OlderThan time.Duration
	MaxSize   int64
	Now       time.Time // zero means time.Now()
}

// Prune removes entries as opts says and returns them.
func (c *Cache) Prune(ctx context.Context, opts PruneOptions) ([]*Entry, error) {
	if _, err := os.Stat(c.Dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	unlock, err := c.lock(ctx, true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c.removeOrphans()
	entries, err := c.list()
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	var removed []*Entry
	for _, e := range entries {
		if opts.All || e.Problem != "" || opts.OlderThan > 0 && now.Sub(e.LastUsed) > opts.OlderThan {
			if err := c.discard(e.ID); err != nil {
				return removed, err
			}
			removed = append(removed, e)
		}
	}
	if opts.MaxSize > 0 {
		more, err := c.shrink(opts.MaxSize, "")
		removed = append(removed, more...)
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// ParseAge reads an age as prune's --older-than takes it: a Go duration
// ("36h", "90m") or a number of days ("30d").
func ParseAge(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(t, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err == nil && n > 0 && n < 1e5 {
			return time.Duration(n * float64(24*time.Hour)), nil
		}
	} else if d, err := time.ParseDuration(t); err == nil && d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("%q is not an age: write it like \"30d\", \"36h\" or \"90m\"", s)
}
