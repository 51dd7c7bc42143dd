// Package alltest runs descriptions for tests as the command line tool
// does: through engine.Run with every driver drivers/all registers, in
// the description's workspace, its events recorded by a testkit.Recorder
// and its secrets redacted. Each run's scratch area is a TempDir of its
// own, so that a test can count what the run left there.
package alltest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/all"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

// Registry returns a registry with every built-in driver.
func Registry() *engine.Registry {
	r := engine.NewRegistry()
	all.Register(r)
	return r
}

// Result is a run of a description.
type Result struct {
	Sum *engine.Summary
	Rec *testkit.Recorder
	// Temp is the run's TempDir, where the builds' scratch directories
	// were.
	Temp string
}

// Run runs a description (loaded with Registry's drivers) under ctx, its
// events going to rec (a new Recorder when nil); cleanup is how long the
// builds' cleanups may take once ctx is done (RunOptions.CleanupTimeout).
func Run(t testing.TB, ctx context.Context, d *description.Description, rec *testkit.Recorder, cleanup time.Duration) *Result {
	t.Helper()
	if rec == nil {
		rec = &testkit.Recorder{}
	}
	bus := rec.Bus()
	for _, s := range d.Secrets {
		bus.AddSecret(s)
	}
	temp := t.TempDir()
	sum := engine.Run(ctx, d.Graph, Registry(), bus, engine.RunOptions{
		Workspace: d.Root, TempDir: temp, Tracker: step.NewTracker(), CleanupTimeout: cleanup,
	})
	return &Result{Sum: sum, Rec: rec, Temp: temp}
}

// OK fails the test unless every build succeeded.
func (r *Result) OK(t testing.TB) {
	t.Helper()
	for _, res := range r.Sum.Results {
		if res.Err != nil {
			t.Fatalf("build %s failed: %v\n%s", res.Build, res.Err, r.Rec.Log())
		}
	}
}

// Err returns the named build's error, failing the test when it
// succeeded.
func (r *Result) Err(t testing.TB, build string) string {
	t.Helper()
	res := r.Sum.Result(build)
	if res == nil {
		t.Fatalf("no build %q", build)
	}
	if res.Err == nil {
		t.Fatalf("build %q succeeded; want an error\n%s", build, r.Rec.Log())
	}
	return res.Err.Error()
}

// StepTimes lists each finished step with how long it took.
func (r *Result) StepTimes() string {
	var out []string
	for _, e := range r.Rec.Of(event.StepFinished) {
		out = append(out, e.Build+" "+e.Step+" "+e.Elapsed.Round(100*time.Millisecond).String())
	}
	return strings.Join(out, "\n")
}

// TempLeft lists what the run left in its scratch area, as "temp NAME".
func (r *Result) TempLeft() []string {
	var out []string
	entries, _ := os.ReadDir(r.Temp)
	for _, e := range entries {
		out = append(out, "temp "+e.Name())
	}
	return out
}
