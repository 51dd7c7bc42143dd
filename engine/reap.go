package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/imgbuild/imgbuild/engine/journal"
	"github.com/imgbuild/imgbuild/engine/panics"
)

// ReapOptions control Reap.
type ReapOptions struct {
	// DryRun lists what dead runs left without removing anything.
	DryRun bool
	// Kept also removes what builds kept on purpose (--on-error=abort):
	// imgbuild cleanup does, the start of a run does not.
	Kept bool
	// Timeout bounds the work on each entry; 0 means 10 minutes.
	Timeout time.Duration
}

// Reaped is what Reap did with one journal entry of a dead run.
type Reaped struct {
	Run   string
	Entry journal.Entry
	// Found lists what was still there, as the kind's reaper says it.
	Found []string
	// Removed says it was removed (never with DryRun); Kept that it was
	// kept on purpose and left alone.
	Removed, Kept bool
	// Err is why it could not be found or removed.
	Err error
}

// Reap finds what the runs recorded in the journal directory dir left
// when they died, and removes it through the reapers of reg (unless
// opts.DryRun). Runs still alive are left alone. Entries whose resources
// are all gone are marked done; a journal with nothing left is removed.
// Each entry is reported, in the order recorded, oldest run first.
func Reap(ctx context.Context, reg *Registry, dir string, opts ReapOptions) ([]Reaped, error) {
	runs, err := journal.Dead(dir)
	if err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	var out []Reaped
	for _, run := range runs {
		open, kept := append([]journal.Entry(nil), run.Open...), append([]journal.Entry(nil), run.Kept...)
		for _, e := range open {
			out = append(out, reapOne(ctx, reg, run, e, opts.DryRun, timeout))
		}
		for _, e := range kept {
			if !opts.Kept {
				out = append(out, Reaped{Run: run.ID, Entry: e, Kept: true, Found: []string{e.What}})
				continue
			}
			out = append(out, reapOne(ctx, reg, run, e, opts.DryRun, timeout))
		}
		if err := run.Release(); err != nil {
			out = append(out, Reaped{Run: run.ID, Err: fmt.Errorf("releasing the journal of run %s: %w", run.ID, err)})
		}
	}
	return out, nil
}

func reapOne(ctx context.Context, reg *Registry, run *journal.DeadRun, e journal.Entry, dryRun bool, timeout time.Duration) Reaped {
	r := Reaped{Run: run.ID, Entry: e}
	rp, ok := reg.Reapers[e.Kind]
	if !ok {
		r.Err = fmt.Errorf("no reaper knows entries of kind %q (written by another version of imgbuild?): remove %s by hand, then the journal %s", e.Kind, e.What, run.ID)
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r.Err = panics.Call(func() error {
		found, err := rp.Find(ctx, e)
		r.Found = found
		if err != nil {
			return fmt.Errorf("looking for %s: %w", e.What, err)
		}
		if dryRun {
			return nil
		}
		if len(found) > 0 {
			if err := rp.Remove(ctx, e); err != nil {
				return fmt.Errorf("removing %s: %w", e.What, err)
			}
			r.Removed = true
		}
		return run.Done(e.ID)
	})
	return r
}
