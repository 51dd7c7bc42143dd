package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/panics"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
)

// buggyConfig is a fixture builder with a bug where the test says.
type buggyConfig struct {
	PanicIn string `kw:"panic_in" doc:"Where to panic: before-steps, launch, capture, goroutine, post, or nothing."`
	Wait    bool   `kw:"wait" doc:"Wait in launch until the build is cancelled."`
	After   string `kw:"after" doc:"Panic only once this build's launch has started."`
}

type nothingConfig struct{}

type postFunc func(ctx context.Context, env *engine.PostEnv, in *engine.Artifact) (*engine.Artifact, error)

func (f postFunc) PostProcess(ctx context.Context, env *engine.PostEnv, in *engine.Artifact) (*engine.Artifact, error) {
	return f(ctx, env, in)
}

// buggyRegistry has the builder "buggy" (steps launch, then capture, which
// makes the artifact) and the post-processor "crash", which panics.
func buggyRegistry(rec *recorder) *engine.Registry {
	reg := engine.NewRegistry()
	reg.AddBuilder(&engine.BuilderDef{
		Schema: schema.Of("buggy", "A fixture builder with a bug.", &buggyConfig{}),
		Build: func(ctx context.Context, job *engine.Job) (*engine.Artifact, error) {
			cfg := job.Config.(*buggyConfig)
			if cfg.PanicIn == "before-steps" {
				panic("before any step")
			}
			mk := func(name string, artifact bool) step.Step {
				return &step.Func{StepName: name, Artifact: artifact,
					RunFunc: func(ctx context.Context) error {
						rec.add(job.Name + " run " + name)
						if name == "launch" {
							ch, _ := rec.working.LoadOrStore(job.Name, make(chan struct{}))
							close(ch.(chan struct{}))
						}
						if cfg.After != "" {
							other, _ := rec.working.LoadOrStore(cfg.After, make(chan struct{}))
							<-other.(chan struct{})
						}
						switch {
						case cfg.PanicIn == name:
							var m map[string]int
							m[name]++
						case cfg.PanicIn == "goroutine" && name == "launch":
							panics.Go(ctx, func() { panic("in the driver's goroutine") })
							<-ctx.Done()
							return context.Cause(ctx)
						case cfg.Wait && name == "launch":
							<-ctx.Done()
							return ctx.Err()
						}
						return nil
					},
					CleanFunc: func(ctx context.Context, failed bool) error {
						rec.add(fmt.Sprintf("%s clean %s failed=%v", job.Name, name, failed))
						return nil
					},
				}
			}
			if err := job.Steps.Run(ctx, mk("launch", false), mk("capture", true)); err != nil {
				return nil, err
			}
			return &engine.Artifact{ID: "id-" + job.Name}, nil
		},
	})
	reg.AddPostProcessor(&engine.PostProcessorDef{
		Schema: schema.Of("crash", "A post-processor that panics.", &nothingConfig{}),
		New: func(any) (engine.PostProcessor, error) {
			return postFunc(func(context.Context, *engine.PostEnv, *engine.Artifact) (*engine.Artifact, error) {
				panic("post-processor bug")
			}), nil
		},
	})
	return reg
}

func buggyNode(name, panicIn string, wait bool) *engine.Node {
	m := value.NewMap()
	m.Set("panic_in", value.String{S: panicIn})
	if wait {
		m.Set("wait", value.Bool(true))
	}
	n := &engine.Node{Name: name, Driver: "buggy", Pos: "t.star:1:1", Settings: m}
	if panicIn == "post" {
		n.PostProcessors = []*value.Object{{Kind: "crash", Pos: "t.star:2:1", Fields: *value.NewMap()}}
	}
	return n
}

// logOf is what rec's events say about build, one a line, as its log
// file would.
func logOf(rec *testkit.Recorder, build string) string {
	var lines []string
	for _, e := range rec.Events() {
		if e.Build == build {
			lines = append(lines, string(e.Type)+": "+e.Message+e.Error)
		}
	}
	return strings.Join(lines, "\n")
}

// TestAPanicAnywhereInABuildFailsOnlyThatBuild panics in each place a
// build runs code (before its steps, in a step, in the step that makes the
// artifact, in a goroutine the driver started, in a post-processor) while
// another build runs: the panicking build fails with the stack in its log,
// the steps that ran are cleaned up as failed, and the other build goes on.
func TestAPanicAnywhereInABuildFailsOnlyThatBuild(t *testing.T) {
	cases := []struct {
		panicIn  string
		cleaned  string
		errStart string
	}{
		{"before-steps", "", "panic: before any step"},
		{"launch", "bad clean launch failed=true", "launch: panic: assignment to entry in nil map"},
		{"capture", "bad clean capture failed=true; bad clean launch failed=true", "capture: panic: assignment to entry in nil map"},
		{"goroutine", "bad clean launch failed=true", "launch: panic: in the driver's goroutine"},
		{"post", "bad clean launch failed=false; bad clean capture failed=true", "post-processor crash at t.star:2:1: panic: post-processor bug"},
	}
	for _, c := range cases {
		t.Run(c.panicIn, func(t *testing.T) {
			rec := &recorder{}
			reg := buggyRegistry(rec)
			g := graph(t, reg, buggyNode("bad", c.panicIn, false), buggyNode("good", "", false))
			log := &testkit.Recorder{}
			sum := engine.Run(context.Background(), g, reg, event.NewBus(log), engine.RunOptions{})
			bad := sum.Result("bad")
			if bad.Status != event.Failed {
				t.Fatalf("bad: %s (%v), want failed", bad.Status, bad.Err)
			}
			var pe *panics.Error
			if !errors.As(bad.Err, &pe) || !strings.HasPrefix(bad.Err.Error(), c.errStart) {
				t.Errorf("bad's error = %q, want a panic starting %q", bad.Err, c.errStart)
			}
			if l := logOf(log, "bad"); strings.Count(l, "stack of the panic") != 1 || !strings.Contains(l, "panic_test.go") {
				t.Errorf("bad's log should hold the stack once:\n%s", l)
			}
			var cleaned []string
			for _, e := range rec.list() {
				if strings.HasPrefix(e, "bad clean") {
					cleaned = append(cleaned, e)
				}
			}
			if strings.Join(cleaned, "; ") != c.cleaned {
				t.Errorf("cleanups: %q, want %q", strings.Join(cleaned, "; "), c.cleaned)
			}
			if s := sum.Result("good").Status; s != event.Succeeded {
				t.Errorf("good: %s (%v), want succeeded", s, sum.Result("good").Err)
			}
		})
	}
}

func TestAPanicUnderFailFastCancelsTheOtherBuilds(t *testing.T) {
	rec := &recorder{}
	reg := buggyRegistry(rec)
	bad := buggyNode("bad", "goroutine", false)
	bad.Settings.Set("after", value.String{S: "waiting"})
	g := graph(t, reg, bad, buggyNode("waiting", "", true))
	sum := engine.Run(context.Background(), g, reg, event.NewBus(), engine.RunOptions{FailFast: true})
	if s := sum.Result("bad").Status; s != event.Failed {
		t.Errorf("bad: %s", s)
	}
	if s := sum.Result("waiting").Status; s != event.Cancelled {
		t.Errorf("waiting: %s (%v), want cancelled", s, sum.Result("waiting").Err)
	}
	if !slices.Contains(rec.list(), "waiting clean launch failed=true") {
		t.Errorf("the cancelled build did not clean up: %v", rec.list())
	}
}

// TestAPanickingOutputIsDroppedAndTheRunGoesOn gives the run an output
// (a renderer) that panics at the first step: the builds succeed, the other
// outputs are told, with the stack, and Broken says why.
func TestAPanickingOutputIsDroppedAndTheRunGoesOn(t *testing.T) {
	rec := &recorder{}
	reg := buggyRegistry(rec)
	g := graph(t, reg, buggyNode("a", "", false), buggyNode("b", "", false))
	log := &testkit.Recorder{}
	crash := event.SinkFunc(func(e event.Event) {
		if e.Type == event.StepStarted {
			panic("renderer bug")
		}
	})
	bus := event.NewBus(crash, log)
	sum := engine.Run(context.Background(), g, reg, bus, engine.RunOptions{})
	if !sum.OK() {
		t.Fatalf("the run failed: %v %v", sum.Result("a").Err, sum.Result("b").Err)
	}
	broken := bus.Broken()
	if len(broken) != 1 || !strings.Contains(broken[0].Error(), "the event.SinkFunc output stopped at a step_started event: panic: renderer bug") {
		t.Errorf("Broken() = %v", broken)
	}
	if l := logOf(log, ""); !strings.Contains(l, "warning: the event.SinkFunc output stopped") || !strings.Contains(l, "panic_test.go") {
		t.Errorf("the other output was not told, with the stack:\n%s", l)
	}
}
