package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/value"
)

// incremental decides, build by build, whether a run builds or reuses:
// the first assessment (one batch of artifact checks per driver) covers the
// builds whose upstream builds are up to date too, and a build whose
// upstream was just rebuilt is assessed again, under its lock, with the
// new upstream artifacts.
type incremental struct {
	store    Store
	assessor *Assessor
	pre      map[string]*Assessment
}

// startIncremental loads the store's records and assesses every build.
func startIncremental(ctx context.Context, g *Graph, bus *event.Bus, opts *RunOptions) (*incremental, error) {
	inc := &incremental{store: opts.Store}
	if opts.Store == nil {
		return inc, nil
	}
	if opts.Fingerprinter == nil {
		return nil, errors.New("engine: RunOptions.Store needs a Fingerprinter")
	}
	records, err := opts.Store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the state in %s: %w", opts.Store.Where(), err)
	}
	inc.assessor = &Assessor{Graph: g, Fingerprinter: opts.Fingerprinter, Records: records, Force: opts.forced, AllLookups: true}
	inc.pre = inc.assessor.Assess(ctx)
	return inc, nil
}

// run builds n, or reuses its artifact when it is up to date. deps are the
// results of the builds it consumes, all with their artifacts.
//
// Unless wait is set, a build another runner holds is not waited for: the
// result is marked deferred, and the scheduler tries other builds first.
func (inc *incremental) run(ctx context.Context, n *Node, reg *Registry, bus *event.Bus, opts RunOptions, deps map[string]*Result, wait bool) *Result {
	inputs := map[string]*Artifact{}
	upstream := map[string]string{}
	for d, r := range deps {
		inputs[d] = r.Artifact
		upstream[d] = r.identity()
	}
	if inc.store == nil {
		return runBuild(ctx, n, reg, bus, opts, inputs, nil, "", "")
	}
	ui := event.NewUI(bus, n.Name, n.Driver)
	pre := inc.pre[n.Name]
	if pre.Err != nil {
		return failed(ui, n, pre.Err)
	}
	if pre.Mark == MarkUpToDate && sameUpstream(pre.Inputs.Upstream, upstream) {
		return upToDate(ui, n, pre.Prev)
	}

	lockOpts := opts.Lock
	lockOpts.NoWait = !wait
	lockOpts.Waiting = func(info LockInfo) {
		ui.Say("waiting for %s, which has been building it since %s", info.Holder, info.Since.Local().Format(time.TimeOnly))
	}
	lease, err := inc.store.Lock(ctx, n.Name, lockOpts)
	if errors.Is(err, ErrLockHeld) {
		return &Result{Build: n.Name, Driver: n.Driver, deferred: true}
	}
	if err != nil {
		return failed(ui, n, fmt.Errorf("locking the build in %s: %w", inc.store.Where(), err))
	}
	defer func() {
		if err := lease.Release(context.WithoutCancel(ctx)); err != nil {
			ui.Warn("releasing the build's lock in %s: %v", inc.store.Where(), err)
		}
	}()
	// Another runner may have built it while this one waited.
	rec, err := inc.store.Get(ctx, n.Name)
	if err != nil {
		return failed(ui, n, fmt.Errorf("reading the build's state in %s: %w", inc.store.Where(), err))
	}
	records := map[string]*BuildState{n.Name: rec}
	for d, r := range deps {
		records[d] = &BuildState{Artifact: r.Artifact, Files: r.Files, Fingerprint: "-"}
	}
	a := *inc.assessor
	a.Records = records
	as, err := a.Compare(ctx, n, upstream)
	if err != nil {
		return failed(ui, n, err)
	}
	if as.Mark == MarkUpToDate {
		err := a.Verify(ctx, []string{n.Name})[n.Name]
		if err == nil {
			return upToDate(ui, n, rec)
		}
		as.Mark, as.Reasons = MarkRebuild, []string{err.Error()}
	}
	bctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-lease.Lost():
			cancel(fmt.Errorf("build %q lost its lock in %s (its lease could not be renewed): another runner may take it over", n.Name, inc.store.Where()))
		case <-bctx.Done():
		}
	}()
	r := runBuild(bctx, n, reg, bus, opts, inputs, as.Inputs.Lookups, as.why(), as.Inputs.Fingerprint())
	if cause := context.Cause(bctx); r.Err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		r.Err = errors.Join(r.Err, cause)
	}
	next := rec.After(r, as.Inputs, opts.Lock.Holder, bus.Redact)
	if err := inc.store.Put(context.WithoutCancel(ctx), n.Name, next); err != nil {
		ui.Warn("the build is not recorded, so the next run builds it again: %v", err)
	}
	return r
}

// sameUpstream reports whether the upstream artifacts are those the
// assessment saw.
func sameUpstream(assessed, now map[string]string) bool {
	for d, id := range now {
		if assessed[d] != id {
			return false
		}
	}
	return len(assessed) == len(now)
}

// upToDate is the result of a build reused from its record.
func upToDate(ui *event.UI, n *Node, rec *BuildState) *Result {
	art := *rec.Artifact
	art.Build, art.Driver = n.Name, n.Driver
	msg := fmt.Sprintf("up to date: built %s", rec.Finished.Local().Format("2006-01-02 15:04:05"))
	if art.ID != "" {
		msg += ", artifact " + art.ID
	}
	ui.Emit(event.Event{Type: event.BuildFinished, Status: event.UpToDate, Message: msg})
	return &Result{Build: n.Name, Driver: n.Driver, Status: event.UpToDate, Artifact: &art, Files: rec.Files, Built: rec.Finished}
}

// failed is the result of a build that could not be decided or locked.
func failed(ui *event.UI, n *Node, err error) *Result {
	ui.Emit(event.Event{Type: event.BuildFinished, Status: event.Failed, Error: err.Error()})
	return &Result{Build: n.Name, Driver: n.Driver, Status: event.Failed, Err: err}
}

// failAll ends a run that could not start: every build fails with err.
func failAll(g *Graph, bus *event.Bus, err error, start time.Time) *Summary {
	sum := &Summary{}
	for _, n := range g.Nodes {
		sum.Results = append(sum.Results, failed(event.NewUI(bus, n.Name, n.Driver), n, err))
	}
	sum.Elapsed = time.Since(start)
	bus.Emit(event.Event{Type: event.RunFinished, Message: "some builds did not succeed", Elapsed: sum.Elapsed})
	return sum
}

// withLookups returns n with each lookup replaced by what the run's
// fingerprint found, so that the build uses the very value recorded.
func withLookups(n *Node, found map[string]string) *Node {
	if len(found) == 0 {
		return n
	}
	out := *n
	out.Settings = &value.Map{Values: map[string]value.Value{}}
	for _, k := range n.Settings.Keys {
		v := n.Settings.Values[k]
		if f, ok := found[k]; ok {
			v = value.String{S: f}
		}
		out.Settings.Set(k, v)
	}
	return &out
}

// sumArtifactFiles hashes the artifact's files that are regular files on
// this machine, so that a later run can check them.
func sumArtifactFiles(workspace string, a *Artifact) map[string]FileSum {
	sums := map[string]FileSum{}
	for _, f := range a.Files {
		p := f
		if !filepath.IsAbs(p) && workspace != "" {
			p = filepath.Join(workspace, p)
		}
		if s, err := SumFile(p, nil); err == nil {
			sums[f] = s
		}
	}
	if len(sums) == 0 {
		return nil
	}
	return sums
}
