package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/journal"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/panics"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/value"
)

// RunOptions control a run.
type RunOptions struct {
	// Parallel is how many builds may run at once; 0 means 4.
	Parallel int
	// FailFast cancels the other builds on the first failure; otherwise
	// builds that do not depend on the failed one go on.
	FailFast bool
	// OnError says whether a failed build's resources are cleaned up
	// (step.Cleanup, the default) or kept for debugging (step.Abort).
	OnError step.Policy
	// Workspace is the description's root directory; builds run with paths
	// relative to it.
	Workspace string
	// TempDir holds the builds' scratch directories; "" means the system's.
	TempDir string
	// Tracker, if set, records pending cleanups so that a hard stop can
	// list what may be left.
	Tracker *step.Tracker
	// CleanupTimeout bounds each step's cleanup; 0 means 10 minutes.
	CleanupTimeout time.Duration
	// Force rebuilds every build whatever its state and replaces its
	// previous artifacts (run --force): the drivers read it as Job.Force
	// (also set for ForceBuilds), as if each build's force keyword
	// (force, force_deregister) were set.
	Force bool
	// Start and RunID are what run values (timestamp(), run_id()) resolve
	// to, the same for every build of the run; zero means the time Run
	// starts, and an id made from it.
	Start time.Time
	RunID string
	// Hooks, if set, are called around every build's steps (--debug,
	// --on-error ask).
	Hooks *step.Hooks
	// Journal, if set, records what builds create before they create it
	// (Job.Record), so that a killed run leaves nothing lost.
	Journal *journal.Journal
	// Store, if set, holds the builds' records: a build whose inputs did
	// not change since it was last built, and whose artifact its driver
	// confirms, is not run again (status UpToDate) and gives its outputs
	// to its dependents from there. Each build is locked in the store
	// while it is decided and built, so runs sharing the store never make
	// one image twice. Without a store every build runs.
	Store Store
	// Fingerprinter computes the builds' inputs; needed with Store.
	Fingerprinter *Fingerprinter
	// ForceBuilds names builds (names or globs) rebuilt whatever their
	// state, and whose previous artifacts are replaced, as --force-build
	// does; Force does both to every build.
	ForceBuilds []string
	// Lock says who this run is and how long it waits for builds other
	// runs hold.
	Lock LockOptions
}

// forced says why the build is rebuilt whatever its state, or "".
func (o *RunOptions) forced(build string) string {
	switch {
	case o.Force:
		return "forced (--force)"
	case matchAny(o.ForceBuilds, build):
		return "forced (--force-build)"
	}
	return ""
}

// Result is how one build ended.
type Result struct {
	Build    string
	Driver   string
	Status   event.Status
	Err      error
	Artifact *Artifact
	Elapsed  time.Duration
	// Files are the sums of the artifact's local files.
	Files map[string]FileSum
	// Built is when an up-to-date build was last built.
	Built time.Time
	// Report is what the build learned about its image: its tests'
	// results (also those of a build whose tests failed), the packages in
	// it, its fingerprint and upstream artifacts. Nil for a build that
	// did not run.
	Report *Report

	deferred bool // not decided: another runner holds its lock
}

// identity is the identity of the build's artifact, for its dependents'
// inputs.
func (r *Result) identity() string { return ArtifactIdentity(r.Artifact, r.Files) }

// Summary is how a run ended.
type Summary struct {
	Results []*Result // in the graph's order
	Elapsed time.Duration
}

// OK reports whether every build succeeded or was up to date.
func (s *Summary) OK() bool {
	for _, r := range s.Results {
		if !r.Status.OK() {
			return false
		}
	}
	return true
}

// Result returns the result of the named build.
func (s *Summary) Result(name string) *Result {
	for _, r := range s.Results {
		if r.Build == name {
			return r
		}
	}
	return nil
}

// Run builds every node of g, each once all its dependencies have
// succeeded, at most opts.Parallel at a time. A failed build's dependents
// are skipped with the reason; with FailFast the others are cancelled.
// Cancelling ctx cancels every running build (which cleans up) and starts
// no more. The graph must have passed Check.
func Run(ctx context.Context, g *Graph, reg *Registry, bus *event.Bus, opts RunOptions) *Summary {
	start := time.Now()
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = 4
	}
	if opts.Start.IsZero() {
		opts.Start = start
	}
	if opts.RunID == "" {
		opts.RunID = opts.Start.UTC().Format("20060102-150405.000")
	}
	for _, s := range g.Secrets() {
		bus.AddSecret(s)
	}
	bus.Emit(event.Event{Type: event.RunStarted, Message: fmt.Sprintf("%d builds, up to %d at once", len(g.Nodes), parallel)})

	runCtx, cancelAll := context.WithCancelCause(ctx)
	defer cancelAll(nil)
	inc, err := startIncremental(ctx, g, bus, &opts)
	if err != nil {
		return failAll(g, bus, err, start)
	}

	results := map[string]*Result{}
	waiting := map[string]int{}         // build → unfinished dependencies
	dependents := map[string][]string{} // build → builds that need it
	var ready []*Node
	for _, n := range g.Nodes {
		deps := g.Deps(n)
		waiting[n.Name] = len(deps)
		for _, d := range deps {
			dependents[d] = append(dependents[d], n.Name)
		}
		if len(deps) == 0 {
			ready = append(ready, n)
		}
		bus.Emit(event.Event{Type: event.BuildQueued, Build: n.Name, Driver: n.Driver, Items: deps})
	}

	done := make(chan *Result)
	deferred := map[string]bool{} // builds found locked by another runner once
	running := 0
	stopping := false
	stopReason := ""

	var finish func(r *Result)
	finish = func(r *Result) {
		results[r.Build] = r
		for _, dep := range dependents[r.Build] {
			if _, settled := results[dep]; settled {
				continue
			}
			if !r.Status.OK() {
				n, _ := g.Node(dep)
				reason := fmt.Sprintf("it needs %q, which %s", r.Build, statusVerb(r.Status))
				sr := &Result{Build: dep, Driver: n.Driver, Status: event.Skipped, Err: errors.New(reason)}
				bus.Emit(event.Event{Type: event.BuildFinished, Build: dep, Driver: n.Driver, Status: event.Skipped, Error: reason})
				finish(sr)
				continue
			}
			waiting[dep]--
			if waiting[dep] == 0 {
				n, _ := g.Node(dep)
				ready = append(ready, n)
			}
		}
	}

	for {
		for !stopping && running < parallel && len(ready) > 0 {
			if ctx.Err() != nil {
				break
			}
			n := ready[0]
			ready = ready[1:]
			running++
			deps := map[string]*Result{}
			for _, d := range g.Deps(n) {
				deps[d] = results[d]
			}
			wait := deferred[n.Name] || len(ready) == 0
			go func(n *Node) {
				done <- recovered(bus, n, func() *Result { return inc.run(runCtx, n, reg, bus, opts, deps, wait) })
			}(n)
		}
		if ctx.Err() != nil && !stopping {
			stopping, stopReason = true, "the run was interrupted"
		}
		if running == 0 {
			break
		}
		r := <-done
		running--
		if r.deferred {
			// Another runner holds it: work on something else first, and
			// wait for it next time.
			n, _ := g.Node(r.Build)
			deferred[n.Name] = true
			ready = append(ready, n)
			continue
		}
		finish(r)
		if r.Status == event.Failed && opts.FailFast && !stopping {
			stopping, stopReason = true, fmt.Sprintf("--fail-fast after %q failed", r.Build)
			cancelAll(errors.New(stopReason))
		}
	}
	// Builds never started: cancelled by a stop, or waiting on nothing (a
	// graph that did not pass Check).
	for _, n := range g.Nodes {
		if _, ok := results[n.Name]; ok {
			continue
		}
		reason := stopReason
		if reason == "" {
			reason = "its dependencies never finished"
		}
		results[n.Name] = &Result{Build: n.Name, Driver: n.Driver, Status: event.Cancelled, Err: errors.New(reason)}
		bus.Emit(event.Event{Type: event.BuildFinished, Build: n.Name, Driver: n.Driver, Status: event.Cancelled, Error: reason})
	}
	sum := &Summary{Elapsed: time.Since(start)}
	for _, n := range g.Nodes {
		sum.Results = append(sum.Results, results[n.Name])
	}
	status := "all builds succeeded"
	if !sum.OK() {
		status = "some builds did not succeed"
	}
	bus.Emit(event.Event{Type: event.RunFinished, Message: status, Elapsed: sum.Elapsed})
	return sum
}

func statusVerb(s event.Status) string {
	switch s {
	case event.Failed:
		return "failed"
	case event.Cancelled:
		return "was cancelled"
	case event.Skipped:
		return "was skipped"
	}
	return string(s)
}

// recovered runs a build's goroutine: a panic outside runBuild, which
// recovers its own (checking whether the build is up to date, recording
// it), fails the build instead of the process.
func recovered(bus *event.Bus, n *Node, run func() *Result) (r *Result) {
	defer func() {
		if v := recover(); v != nil {
			pe := panics.New(v)
			ui := event.NewUI(bus, n.Name, n.Driver)
			ui.Panicked(pe)
			r = failed(ui, n, pe)
		}
	}()
	return run()
}

// runBuild runs one build to its end and reports how it ended. It never
// panics: a panic in the build (its driver, a provisioner, a
// post-processor, a goroutine the driver started with panics.Go) is the
// build's failure, with the stack in its log, after the cleanups of the
// steps that ran.
func runBuild(ctx context.Context, n *Node, reg *Registry, bus *event.Bus, opts RunOptions, inputs map[string]*Artifact, lookups map[string]string, why, fingerprint string) (r *Result) {
	start := time.Now()
	ui := event.NewUI(bus, n.Name, n.Driver)
	r = &Result{Build: n.Name, Driver: n.Driver, Report: &Report{Fingerprint: fingerprint, Upstream: upstreamOf(inputs)}}
	defer func() {
		if v := recover(); v != nil {
			pe := panics.New(v)
			ui.Panicked(pe)
			r.Err, r.Artifact = errors.Join(r.Err, pe), nil
		}
		r.Elapsed = time.Since(start)
		switch {
		case r.Err == nil:
			r.Status = event.Succeeded
			ui.Emit(event.Event{Type: event.ArtifactMade, Artifact: r.Artifact, Message: r.Artifact.ID})
		case ctx.Err() != nil:
			r.Status = event.Cancelled
		default:
			r.Status = event.Failed
		}
		ui.Emit(event.Event{Type: event.BuildFinished, Status: r.Status, Error: errString(r.Err), Elapsed: r.Elapsed})
	}()
	ui.Emit(event.Event{Type: event.BuildStarted})
	if why != "" {
		ui.Say("%s", why)
	}
	bctx, catcher := catchPanics(ctx, ui)
	defer catcher.stop()
	if n, r.Err = atRun(n, value.RunInfo{Start: opts.Start, ID: opts.RunID}); r.Err != nil {
		return r
	}
	n = withLookups(n, lookups)
	r.Artifact, r.Err = buildOne(bctx, n, reg, ui, opts, inputs, catcher, r.Report)
	if r.Err == nil && r.Artifact != nil {
		r.Files = sumArtifactFiles(opts.Workspace, r.Artifact)
	}
	return r
}

// atRun returns n with its run values (timestamp(), run_id()) replaced by
// their text for this run. The graph itself keeps them, so the plan and
// the fingerprints recorded in state show "(at run: timestamp)".
func atRun(n *Node, info value.RunInfo) (*Node, error) {
	out := *n
	fail := func(err error) (*Node, error) { return nil, fmt.Errorf("%s: %w", n.Pos, err) }
	settings, err := value.ResolveRun(n.Settings, info)
	if err != nil {
		return fail(err)
	}
	out.Settings = settings.(*value.Map)
	objects := func(objs []*value.Object) ([]*value.Object, error) {
		res := make([]*value.Object, len(objs))
		for i, o := range objs {
			r, err := value.ResolveRun(o, info)
			if err != nil {
				return nil, err
			}
			res[i] = r.(*value.Object)
		}
		return res, nil
	}
	if out.Provisioners, err = objects(n.Provisioners); err != nil {
		return fail(err)
	}
	if out.PostProcessors, err = objects(n.PostProcessors); err != nil {
		return fail(err)
	}
	if out.ErrorCleanup, err = objects(n.ErrorCleanup); err != nil {
		return fail(err)
	}
	if out.Tests, err = objects(n.Tests); err != nil {
		return fail(err)
	}
	return &out, nil
}

// panicCatcher receives the panics of a build's goroutines (panics.Go):
// the first cancels the build, with the panic as the cause, and fails it.
type panicCatcher struct {
	mu     sync.Mutex
	first  *panics.Error
	cancel context.CancelCauseFunc
}

// catchPanics returns the build's context, carrying its panic handler.
func catchPanics(ctx context.Context, ui *event.UI) (context.Context, *panicCatcher) {
	bctx, cancel := context.WithCancelCause(ctx)
	c := &panicCatcher{cancel: cancel}
	return panics.WithHandler(bctx, func(pe *panics.Error) {
		ui.Panicked(pe)
		c.mu.Lock()
		if c.first == nil {
			c.first = pe
		}
		c.mu.Unlock()
		cancel(pe)
	}), c
}

// fail joins the first goroutine panic, if any, to err.
func (c *panicCatcher) fail(err error) error {
	c.mu.Lock()
	pe := c.first
	c.mu.Unlock()
	if pe == nil || errors.Is(err, pe) {
		return err
	}
	return errors.Join(err, pe)
}

func (c *panicCatcher) stop() { c.cancel(nil) }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func buildOne(ctx context.Context, n *Node, reg *Registry, ui *event.UI, opts RunOptions, inputs map[string]*Artifact, catcher *panicCatcher, report *Report) (art *Artifact, err error) {
	def, ok := reg.Builders[n.Driver]
	if !ok {
		return nil, fmt.Errorf("no builder named %q is registered", n.Driver)
	}
	resolve := func(r value.Ref) (value.Value, error) {
		a, ok := inputs[r.Build]
		if !ok || a == nil {
			return nil, fmt.Errorf("output %s is not available: build %q has not produced an artifact", r, r.Build)
		}
		return a.Output(r.Output)
	}
	settings, err := value.Resolve(n.Settings, resolve)
	if err != nil {
		return nil, err
	}
	cfg := def.Schema.New()
	if _, err := def.Schema.Decode(settings.(*value.Map), cfg, schema.Options{}); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", n.Pos, n.Driver, err)
	}
	workDir, dirID, err := makeScratchDir(opts, n.Name)
	if err != nil {
		return nil, err
	}
	// One flag, one meaning: a forced build replaces its previous artifacts.
	force := opts.forced(n.Name) != ""
	job := &Job{
		Name: n.Name, Driver: n.Driver, Config: cfg, UI: ui,
		Steps:     &step.Runner{UI: ui, OnError: opts.OnError, Tracker: opts.Tracker, CleanupTimeout: opts.CleanupTimeout, Hooks: opts.Hooks},
		WorkDir:   workDir,
		Workspace: opts.Workspace,
		Inputs:    inputs,
		Force:     force,
		Outputs:   output.NewSet(opts.Workspace, n.Name, force),
		redact:    ui.Bus().Redact,
		journal:   opts.Journal,
		report:    *report,
	}
	job.Outputs.Journal(job)
	defer func() { *report = job.report }()
	defer func() {
		if err != nil && (opts.OnError == step.Abort || job.Steps.Kept()) {
			ui.Emit(event.Event{Type: event.Leftover, Message: "kept for debugging (--on-error=abort)", Items: []string{"scratch directory " + workDir}})
			warnJournal(ui, opts.Journal.KeepBuild(n.Name))
			return
		}
		if rerr := os.RemoveAll(workDir); rerr == nil {
			warnJournal(ui, opts.Journal.Done(dirID))
		}
		// What the build recorded is gone unless a cleanup failed: the
		// next run or imgbuild cleanup then looks for it.
		var ce *step.CleanupError
		if !errors.As(err, &ce) {
			warnJournal(ui, opts.Journal.DoneBuild(n.Name))
		}
	}()

	if err := job.AddProvisioners(reg, n.Provisioners, resolve); err != nil {
		return nil, err
	}
	if err := job.addErrorCleanup(reg, n.ErrorCleanup, resolve); err != nil {
		return nil, err
	}
	if err := job.AddTests(reg, n.Tests, resolve); err != nil {
		return nil, err
	}
	var posts []PostProcessor
	var postObjs []*value.Object
	for _, o := range n.PostProcessors {
		pdef, ok := reg.PostProcessors[o.Kind]
		if !ok {
			return nil, fmt.Errorf("%s: no post-processor named %q is registered", o.Pos, o.Kind)
		}
		pcfg, err := decodeObject(o, pdef.Schema, resolve)
		if err != nil {
			return nil, err
		}
		p, err := pdef.New(pcfg)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", o.Pos, o.Kind, err)
		}
		posts = append(posts, p)
		postObjs = append(postObjs, o)
	}

	err = panics.Call(func() error {
		var err error
		art, err = def.Build(ctx, job)
		return err
	})
	ui.Panicked(err)
	if err == nil && art == nil {
		err = fmt.Errorf("builder %s returned no artifact", n.Driver)
	}
	if err == nil && job.HasTests() && !job.testsRan {
		err = fmt.Errorf("builder %s did not run the build's tests, so its image is not trusted: it must place an engine.TestStep after capturing the image", n.Driver)
	}
	if err == nil {
		art.Build, art.Driver = n.Name, n.Driver
		art, err = postProcess(ctx, n, ui, reg, posts, postObjs, art, &PostEnv{UI: ui, Build: n.Name, Driver: n.Driver, WorkDir: workDir, Workspace: opts.Workspace, Redact: job.redact, Outputs: job.Outputs, Force: force, Report: &job.report})
	}
	// A goroutine's panic fails the build even if the steps ended well:
	// what it was doing is lost.
	err = catcher.fail(err)
	// The steps that made the artifact are cleaned up now that
	// post-processing is over: removed if it failed.
	if ferr := job.Steps.Finish(ctx, err != nil); ferr != nil {
		err = errors.Join(err, ferr)
	}
	// So are the outputs the build, its provisioners and post-processors
	// placed: kept, or removed with the previous ones put back.
	if err != nil && (opts.OnError == step.Abort || job.Steps.Kept()) {
		if left := job.Outputs.Leftovers(); len(left) > 0 {
			ui.Emit(event.Event{Type: event.Leftover, Message: "kept for debugging (--on-error=abort)", Items: left})
		}
	} else if ferr := job.Outputs.Finish(err != nil); ferr != nil {
		err = errors.Join(err, fmt.Errorf("outputs: %w", ferr))
	}
	if err != nil {
		return nil, err
	}
	return art, nil
}

// postProcess runs the post-processors in order on the artifact.
//
// What each declares as its outputs (PostProcessorDef.Outputs) is kept in
// the final artifact, even when a later one passes on less than it got,
// so that other builds' references to them (img.ova) always find them.
func postProcess(ctx context.Context, n *Node, ui *event.UI, reg *Registry, posts []PostProcessor, postObjs []*value.Object, art *Artifact, env *PostEnv) (*Artifact, error) {
	kept := map[string]any{}
	for i, p := range posts {
		o := postObjs[i]
		ui.SetStep("post-processor: " + o.Kind)
		ui.Emit(event.Event{Type: event.StepStarted, Step: "post-processor: " + o.Kind})
		t := time.Now()
		var next *Artifact
		err := panics.Call(func() error {
			var err error
			next, err = p.PostProcess(ctx, env, art)
			return err
		})
		ui.Panicked(err)
		ui.Emit(event.Event{Type: event.StepFinished, Step: "post-processor: " + o.Kind, Elapsed: time.Since(t), Error: errString(err)})
		if err != nil {
			return nil, fmt.Errorf("post-processor %s at %s: %w", o.Kind, o.Pos, err)
		}
		if next != nil {
			next.Build, next.Driver = n.Name, n.Driver
			art = next
		}
		for _, out := range reg.PostProcessors[o.Kind].OutputsFor(&o.Fields) {
			v, ok := art.Fields[out.Name]
			if !ok {
				return nil, fmt.Errorf("post-processor %s at %s: its artifact has no %q, an output it declares (a bug in %s)", o.Kind, o.Pos, out.Name, o.Kind)
			}
			kept[out.Name] = v
		}
	}
	if len(kept) > 0 {
		if art.Fields == nil {
			art.Fields = map[string]any{}
		}
		maps.Copy(art.Fields, kept)
	}
	return art, nil
}

func decodeObject(o *value.Object, s *schema.Schema, resolve value.Resolver) (any, error) {
	fields, err := value.Resolve(&o.Fields, resolve)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", o.Pos, o.Kind, err)
	}
	cfg := s.New()
	if _, err := s.Decode(fields.(*value.Map), cfg, schema.Options{}); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", o.Pos, o.Kind, err)
	}
	return cfg, nil
}

// warnJournal reports a failure to mark journal entries: they stay open,
// and a later cleanup will look for what is already gone.
func warnJournal(ui *event.UI, err error) {
	if err != nil {
		ui.Warn("could not update the run's journal: %v", err)
	}
}

// makeScratchDir makes a build's scratch directory in opts.TempDir,
// recorded in the journal first, and returns it with its entry's id.
func makeScratchDir(opts RunOptions, build string) (string, int, error) {
	parent := opts.TempDir
	if parent == "" {
		parent = os.TempDir()
	}
	parent, err := filepath.Abs(parent)
	if err != nil {
		return "", 0, err
	}
	for range 100 {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", 0, err
		}
		dir := filepath.Join(parent, "imgbuild-"+output.SafeName(build, 40)+"-"+hex.EncodeToString(b[:]))
		id, err := opts.Journal.Record(journal.Entry{Build: build, Kind: journal.KindDir, What: "scratch directory " + relTo(opts.Workspace, dir), Where: map[string]string{"path": dir}})
		if err != nil {
			return "", 0, err
		}
		err = os.Mkdir(dir, 0o700)
		if errors.Is(err, fs.ErrExist) {
			opts.Journal.Done(id)
			continue
		}
		if err != nil {
			opts.Journal.Done(id)
			return "", 0, fmt.Errorf("creating a scratch directory: %w", err)
		}
		return dir, id, nil
	}
	return "", 0, fmt.Errorf("creating a scratch directory in %s: every name tried was taken", parent)
}

// relTo is p relative to root when inside it, else p.
func relTo(root, p string) string {
	if root != "" {
		if abs, err := filepath.Abs(root); err == nil {
			if r, err := filepath.Rel(abs, p); err == nil && !strings.HasPrefix(r, "..") {
				return r
			}
		}
	}
	return p
}

// AddProvisioners decodes provisioner objects (with references resolved by
// resolve; nil means there are none) and adds those that apply to this
// build, in order, to the ones Provision runs.
func (j *Job) AddProvisioners(reg *Registry, objs []*value.Object, resolve value.Resolver) error {
	ps, err := j.decodeProvisioners(reg, objs, resolve)
	j.provisioners = append(j.provisioners, ps...)
	return err
}

// addErrorCleanup decodes the error_cleanup provisioners, which Provision
// runs when a provisioner fails.
func (j *Job) addErrorCleanup(reg *Registry, objs []*value.Object, resolve value.Resolver) error {
	ps, err := j.decodeProvisioners(reg, objs, resolve)
	j.errorCleanup = append(j.errorCleanup, ps...)
	return err
}

func (j *Job) decodeProvisioners(reg *Registry, objs []*value.Object, resolve value.Resolver) ([]namedProvisioner, error) {
	var out []namedProvisioner
	if resolve == nil {
		resolve = func(r value.Ref) (value.Value, error) { return nil, fmt.Errorf("output %s is not available", r) }
	}
	for _, o := range objs {
		pdef, ok := reg.Provisioners[o.Kind]
		if !ok {
			return nil, fmt.Errorf("%s: no provisioner named %q is registered", o.Pos, o.Kind)
		}
		pcfg, err := decodeObject(o, pdef.Schema, resolve)
		if err != nil {
			return nil, err
		}
		if pdef.Filter != nil && !pdef.Filter(pcfg, j.Name) {
			continue
		}
		p, err := pdef.New(pcfg)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", o.Pos, o.Kind, err)
		}
		out = append(out, namedProvisioner{kind: o.Kind, pos: o.Pos, p: p, config: pcfg, obj: o, label: provisionerLabel(o, j.Workspace), name: o.Name})
	}
	return out, nil
}
