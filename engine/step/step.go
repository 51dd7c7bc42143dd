// Package step runs a build as a sequence of steps, each of which may leave
// something to undo. Whatever happens (error, cancellation, timeout), the
// cleanups of the steps that ran are run in reverse order, each with its own
// time limit and a context that the build's cancellation does not cancel.
// A failed cleanup is reported with what it may have left, never swallowed.
// A panic in a step or a cleanup is its error (see Runner.Run): the other
// cleanups still run.
//
// # How a driver writes its steps
//
// Every builder writes its steps one way, Packer's multistep way with typed
// state: one type per step, one step per file (step_<what>.go), with the
// step's inputs and outputs as its fields.
//
//	// stepInspect checks the disk and picks the accelerator.
//	type stepInspect struct {
//		ui  *event.UI
//		cfg *Config // read only
//
//		// outputs
//		disk string
//		info *qemuimg.Info
//	}
//
//	// stepCreateOverlay makes the overlay the machine boots.
//	type stepCreateOverlay struct {
//		workDir string
//		disk    *stepInspect // the disk and its format
//
//		// outputs
//		path string
//	}
//
// A step's fields come in three kinds, in this order:
//   - what is known before the build starts (the config, the job, a client):
//     set when the steps are made, never written by Run;
//   - pointers to the earlier steps whose outputs it reads;
//   - its outputs, which later steps read and its own cleanup uses.
//
// The driver makes and wires its steps in one place (its Build function, in
// build.go), which is where to read how data flows through a build. The
// methods are Run, and as needed Cleanup (Cleaner), Leftovers (Leaver) and
// MakesArtifact (Artifact).
//
// What every step of a build reads and none writes (the config, clients,
// the build's names) may be one read-only value the steps share (amazon's
// and vsphere's buildEnv). Something several steps change in turn is a
// value of its own, named for what it is (vsphere's vmHandle, qemu's
// connection), never a bag of everything.
//
// Why this shape, and not the two others the drivers used before:
//   - Closures over one function's variables (Func values made in a Build
//     function) hide what a step reads and writes in what they capture, and
//     can only be run through the whole build.
//   - Step types that all point at one wide build struct (a typed state
//     bag) say nothing about which step fills which field: any step may read
//     a field before the step that fills it has run.
//
// With inputs and outputs as fields, a step is built and tested alone: a
// literal of an earlier step with only its outputs filled in stands in for
// it (see drivers/amazon's and drivers/qemu's step tests), and the compiler
// shows every reader of an output.
//
// Func is for the engine's own tests and for callers outside drivers that
// need a step made of functions; drivers do not use it.
//
// This file is over 500 lines: the Step interfaces, the Runner (retry,
// abort and cleanup policies, sub-phases) and the Tracker of pending
// cleanups belong together, since each is defined by how the others use
// it.
package step

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/panics"
)

// Step is one stage of a build.
type Step interface {
	// Name is shown while the step runs ("launch instance").
	Name() string
	// Run does the step's work.
	Run(ctx context.Context) error
}

// Cleaner is a Step that leaves something to undo. Cleanup is called once
// the build is over if Run was called, even if Run failed; failed reports
// whether the build failed (or was cancelled), so a step that made the
// final artifact can keep it on success and remove it on failure.
type Cleaner interface {
	Cleanup(ctx context.Context, failed bool) error
}

// Leaver is a Step that can say what its cleanup would remove ("instance
// i-0abc in eu-west-1"); it is listed when cleanup is skipped (on-error
// abort) or fails, or when the process is stopped at once.
type Leaver interface {
	Leftovers() []string
}

// Artifact is a Step that makes (part of) the build's artifact: an image,
// an output directory. When the steps succeed, its cleanup is not run with
// the others but kept pending until Finish, after the post-processors, so
// that a post-processor's failure still removes what the build made.
type Artifact interface {
	MakesArtifact() bool
}

// Func is a Step made of functions; nil functions do nothing.
type Func struct {
	StepName  string
	RunFunc   func(ctx context.Context) error
	CleanFunc func(ctx context.Context, failed bool) error
	LeftFunc  func() []string
	// Artifact marks a step that makes the artifact (see Artifact).
	Artifact bool
}

// MakesArtifact implements Artifact.
func (f *Func) MakesArtifact() bool { return f.Artifact }

// Name implements Step.
func (f *Func) Name() string { return f.StepName }

// Run implements Step.
func (f *Func) Run(ctx context.Context) error {
	if f.RunFunc == nil {
		return nil
	}
	return f.RunFunc(ctx)
}

// Cleanup implements Cleaner.
func (f *Func) Cleanup(ctx context.Context, failed bool) error {
	if f.CleanFunc == nil {
		return nil
	}
	return f.CleanFunc(ctx, failed)
}

// Leftovers implements Leaver.
func (f *Func) Leftovers() []string {
	if f.LeftFunc == nil {
		return nil
	}
	return f.LeftFunc()
}

// Policy says what to do with a failed build's resources.
type Policy int

const (
	// Cleanup removes everything a failed build made (the default).
	Cleanup Policy = iota
	// Abort keeps what a failed build made, for debugging, and lists it.
	Abort
)

// Decision is what a Hooks.Failed hook chose after a failed step.
type Decision int

const (
	// FollowPolicy applies the runner's OnError policy.
	FollowPolicy Decision = iota
	// Retry undoes the failed attempt (the step's cleanup, as after a
	// failure) and runs the step again.
	Retry
	// CleanUpAll removes everything the build made, whatever the policy.
	CleanUpAll
	// KeepAll keeps everything the build made and lists it, whatever the
	// policy.
	KeepAll
)

// Hooks let the caller step into a build between its steps: the command
// line pauses before each step for --debug, and asks what to do after a
// failed step for --on-error ask. Nil functions do nothing. Both are called
// from the build's goroutine: a hook that waits (for a person) holds up only
// its own build.
type Hooks struct {
	// Before is called before each step runs (again before a retry). An
	// error stops the build as a failure of that step would, with that
	// error.
	Before func(ctx context.Context, ui *event.UI, s Step) error
	// Failed is called when a step fails, unless the build was cancelled,
	// and decides what happens next.
	Failed func(ctx context.Context, ui *event.UI, s Step, err error) Decision
}

// Runner runs steps for one build.
type Runner struct {
	UI             *event.UI
	OnError        Policy
	CleanupTimeout time.Duration // per step; 0 means 10 minutes
	Tracker        *Tracker      // optional: records pending cleanups
	Hooks          *Hooks        // optional: see Hooks

	pending []Step // artifact steps of successful runs, cleaned up by Finish
	kept    bool   // a failed build's resources were kept (Abort, KeepAll)
}

// CleanupError reports cleanups that failed and what they may have left.
type CleanupError struct {
	Failures []error
	Left     []string
}

func (e *CleanupError) Error() string {
	msg := fmt.Sprintf("cleanup failed: %v", errors.Join(e.Failures...))
	if len(e.Left) > 0 {
		msg += "; may be left: " + strings.Join(e.Left, ", ")
	}
	return msg
}

// Run runs steps in order until one fails or ctx is cancelled, then the
// cleanups of every step that ran, in reverse order. It returns the first
// step's error (wrapped with the step's name), joined with a *CleanupError
// if any cleanup failed.
//
// A panic in a step (or in its Before hook) is that step's error, a
// *panics.Error whose stack goes to the build's log as a Detail event. The
// cleanups run in a deferred call: they run whatever panics, in the steps
// or in the runner itself.
func (r *Runner) Run(ctx context.Context, steps ...Step) (err error) {
	var ran []Step
	policy := r.OnError
	defer func() {
		if v := recover(); v != nil {
			pe := panics.New(v)
			r.UI.Panicked(pe)
			err = pe
		}
		err = r.end(ctx, ran, err, policy)
	}()
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		// Track the step before announcing it, so that a hard stop at any
		// moment lists what it may have made.
		ran = append(ran, s)
		r.Tracker.add(r.UI.Build(), s)
		err, decided := r.runStep(ctx, s)
		switch decided {
		case CleanUpAll:
			policy = Cleanup
		case KeepAll:
			policy = Abort
		}
		if err != nil {
			return err
		}
	}
	// Cancelled while the last step ran, and it finished anyway (its call
	// was answered before the cancel was seen): the build is cancelled all
	// the same, as Packer's builders check after their last step, and its
	// steps clean up.
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	return nil
}

// end runs the cleanups once the steps are over (runErr is why they
// stopped, nil when they all ran): the artifact steps of a successful run
// wait for Finish.
func (r *Runner) end(ctx context.Context, ran []Step, runErr error, policy Policy) error {
	failed := runErr != nil
	if !failed {
		var now []Step
		for _, s := range ran {
			if a, ok := s.(Artifact); ok && a.MakesArtifact() {
				r.pending = append(r.pending, s)
			} else {
				now = append(now, s)
			}
		}
		ran = now
	}
	if failed && policy == Abort {
		r.keep(ran)
		return runErr
	}
	if cerr := r.cleanup(ctx, ran, failed); cerr != nil {
		return errors.Join(runErr, cerr)
	}
	return runErr
}

// runStep runs one step, with the hooks: Before first, and after a failure
// Failed, retrying for as long as it says so. It returns the step's error
// (wrapped with its name) and what Failed decided.
func (r *Runner) runStep(ctx context.Context, s Step) (error, Decision) {
	for {
		err := r.attempt(ctx, s)
		if err == nil {
			return nil, FollowPolicy
		}
		if ctx.Err() != nil {
			if errors.Is(err, ctx.Err()) {
				err = context.Cause(ctx)
			}
			return fmt.Errorf("%s: %w", s.Name(), err), FollowPolicy
		}
		err = fmt.Errorf("%s: %w", s.Name(), err)
		d := FollowPolicy
		if h := r.Hooks; h != nil && h.Failed != nil {
			d = h.Failed(ctx, r.UI, s, err)
		}
		if d != Retry {
			return err, d
		}
		// Undo the failed attempt before the next one.
		if cerr := r.cleanup(ctx, []Step{s}, true); cerr != nil {
			return errors.Join(err, cerr), FollowPolicy
		}
		r.Tracker.add(r.UI.Build(), s)
		r.UI.Say("retrying %s", s.Name())
	}
}

// attempt runs the Before hook and the step once; a panic in either is
// the attempt's error. An error of the hook is returned before the step is
// announced.
func (r *Runner) attempt(ctx context.Context, s Step) error {
	announced := false
	var start time.Time
	err := panics.Call(func() error {
		if h := r.Hooks; h != nil && h.Before != nil {
			if err := h.Before(ctx, r.UI, s); err != nil {
				return err
			}
		}
		r.UI.SetStep(s.Name())
		r.UI.Emit(event.Event{Type: event.StepStarted, Step: s.Name()})
		announced, start = true, time.Now()
		return s.Run(ctx)
	})
	r.UI.Panicked(err)
	if announced {
		r.UI.Emit(event.Event{Type: event.StepFinished, Step: s.Name(), Elapsed: time.Since(start), Error: errString(err)})
	}
	return err
}

// Finish runs the cleanups Run left pending for the steps that made the
// artifact, once the build is over: failed says whether something after the
// steps (a post-processor) failed. The engine calls it for every build.
func (r *Runner) Finish(ctx context.Context, failed bool) error {
	pending := r.pending
	r.pending = nil
	if failed && r.OnError == Abort {
		r.keep(pending)
		return nil
	}
	return r.cleanup(ctx, pending, failed)
}

// Sub returns a runner for a phase of the build run as one of its steps
// (the engine's test phase: launch a machine, test it, remove it): its
// steps are cleaned up when the phase ends, by the same policy, limits and
// tracker, and paused before as --debug says; a failure is decided on by
// the Failed hook of the step the phase is, not once per inner step.
func (r *Runner) Sub() *Runner {
	sub := &Runner{UI: r.UI, OnError: r.OnError, CleanupTimeout: r.CleanupTimeout, Tracker: r.Tracker}
	if r.Hooks != nil && r.Hooks.Before != nil {
		sub.Hooks = &Hooks{Before: r.Hooks.Before}
	}
	return sub
}

// Kept reports whether the runner kept what a failed build made, for
// debugging, instead of cleaning it up.
func (r *Runner) Kept() bool { return r.kept }

// keep reports what the steps made, kept for debugging.
func (r *Runner) keep(steps []Step) {
	r.kept = true
	var left []string
	for _, s := range steps {
		left = append(left, leftovers(s)...)
	}
	if len(left) > 0 {
		r.UI.Emit(event.Event{Type: event.Leftover, Message: "kept for debugging (--on-error=abort)", Items: left})
	}
}

func (r *Runner) cleanup(ctx context.Context, ran []Step, failed bool) error {
	timeout := r.CleanupTimeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	base := context.WithoutCancel(ctx)
	var ce CleanupError
	for i := len(ran) - 1; i >= 0; i-- {
		s := ran[i]
		c, ok := cleanerOf(s)
		if !ok {
			r.Tracker.remove(r.UI.Build(), s)
			continue
		}
		r.UI.SetStep("cleanup: " + s.Name())
		r.UI.Emit(event.Event{Type: event.CleanupStarted, Step: s.Name()})
		cctx, cancel := context.WithTimeout(base, timeout)
		start := time.Now()
		err := panics.Call(func() error { return c.Cleanup(cctx, failed) })
		r.UI.Panicked(err)
		if err == nil && cctx.Err() != nil {
			err = fmt.Errorf("timed out after %s", timeout)
		}
		cancel()
		r.UI.Emit(event.Event{Type: event.CleanupFinished, Step: s.Name(), Elapsed: time.Since(start), Error: errString(err)})
		if err != nil {
			left := leftovers(s)
			ce.Failures = append(ce.Failures, fmt.Errorf("%s: %w", s.Name(), err))
			ce.Left = append(ce.Left, left...)
			r.UI.Emit(event.Event{Type: event.CleanupFailed, Step: s.Name(), Error: err.Error(), Items: left})
			continue
		}
		r.Tracker.remove(r.UI.Build(), s)
	}
	if len(ce.Failures) > 0 {
		return &ce
	}
	return nil
}

// cleanerOf returns s's cleanup, if it has one; a Func without CleanFunc
// has none.
func cleanerOf(s Step) (Cleaner, bool) {
	if f, ok := s.(*Func); ok && f.CleanFunc == nil {
		return nil, false
	}
	c, ok := s.(Cleaner)
	return c, ok
}

func leftovers(s Step) []string {
	if l, ok := s.(Leaver); ok {
		return l.Leftovers()
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Tracker knows, across all builds of a run, which steps ran and were not
// yet cleaned up: what may be left if the process stops at once.
type Tracker struct {
	mu      sync.Mutex
	pending map[string][]Step
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker { return &Tracker{pending: map[string][]Step{}} }

func (t *Tracker) add(build string, s Step) {
	if t == nil {
		return
	}
	if _, ok := cleanerOf(s); !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending[build] = append(t.pending[build], s)
}

func (t *Tracker) remove(build string, s Step) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.pending[build]
	for i, p := range list {
		if p == s {
			t.pending[build] = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(t.pending[build]) == 0 {
		delete(t.pending, build)
	}
}

// Pending lists, per build, what the steps not yet cleaned up may have
// left ("web: instance i-0abc"). Steps that cannot say are named instead.
func (t *Tracker) Pending() []string {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	builds := make([]string, 0, len(t.pending))
	for b := range t.pending {
		builds = append(builds, b)
	}
	sort.Strings(builds)
	for _, b := range builds {
		for _, s := range t.pending[b] {
			left := leftovers(s)
			if len(left) == 0 {
				left = []string{"whatever step " + fmt.Sprintf("%q", s.Name()) + " made"}
			}
			for _, l := range left {
				out = append(out, b+": "+l)
			}
		}
	}
	return out
}
