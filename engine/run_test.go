package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/value"
)

// taskConfig is a fixture builder whose behaviour the test scripts.
type taskConfig struct {
	Input string        `kw:"input" doc:"Echoed into the artifact."`
	Fail  string        `kw:"fail" doc:"Fail in this step."`
	Sleep time.Duration `kw:"sleep" doc:"How long the work step takes."`
	After string        `kw:"after" doc:"Start work only once this build's work has started."`
}

type recorder struct {
	working sync.Map // build → chan struct{}, closed when its work starts
	mu      sync.Mutex
	events  []string
	running atomic.Int32
	peak    atomic.Int32
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func taskRegistry(rec *recorder) *engine.Registry {
	reg := engine.NewRegistry()
	reg.AddBuilder(&engine.BuilderDef{
		Schema:  schema.Of("task", "A scripted fixture builder.", &taskConfig{}),
		Outputs: []engine.Output{{Name: "value", Doc: "The input, echoed."}},
		Build: func(ctx context.Context, job *engine.Job) (*engine.Artifact, error) {
			cfg := job.Config.(*taskConfig)
			mk := func(name string) step.Step {
				return &step.Func{
					StepName: name,
					RunFunc: func(ctx context.Context) error {
						rec.add(job.Name + " run " + name)
						if name == "work" {
							ch, _ := rec.working.LoadOrStore(job.Name, make(chan struct{}))
							close(ch.(chan struct{}))
							if cfg.After != "" {
								other, _ := rec.working.LoadOrStore(cfg.After, make(chan struct{}))
								<-other.(chan struct{})
							}
							n := rec.running.Add(1)
							defer rec.running.Add(-1)
							for {
								p := rec.peak.Load()
								if n <= p || rec.peak.CompareAndSwap(p, n) {
									break
								}
							}
							select {
							case <-time.After(cfg.Sleep):
							case <-ctx.Done():
								return ctx.Err()
							}
						}
						if cfg.Fail == name {
							return errors.New("scripted failure")
						}
						return nil
					},
					CleanFunc: func(ctx context.Context, failed bool) error {
						rec.add(fmt.Sprintf("%s clean %s failed=%v", job.Name, name, failed))
						return nil
					},
					LeftFunc: func() []string { return []string{name + " of " + job.Name} },
				}
			}
			if err := job.Steps.Run(ctx, mk("prepare"), mk("work"), mk("capture")); err != nil {
				return nil, err
			}
			return &engine.Artifact{ID: "id-" + job.Name, Fields: map[string]any{"value": cfg.Input}}, nil
		},
	})
	return reg
}

func node(name string, settings map[string]value.Value, deps ...string) *engine.Node {
	m := value.NewMap()
	for _, k := range []string{"input", "fail", "sleep", "after"} {
		if v, ok := settings[k]; ok {
			m.Set(k, v)
		}
	}
	n := &engine.Node{Name: name, Driver: "task", Pos: "t.star:1:1", Settings: m}
	for _, d := range deps {
		n.DependsOn = append(n.DependsOn, engine.Dependency{Build: d, Pos: "t.star:1:1"})
	}
	return n
}

func graph(t *testing.T, reg *engine.Registry, nodes ...*engine.Node) *engine.Graph {
	t.Helper()
	g := engine.NewGraph()
	for _, n := range nodes {
		if err := g.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Check(reg); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestRunRespectsParallelLimit(t *testing.T) {
	rec := &recorder{}
	reg := taskRegistry(rec)
	var nodes []*engine.Node
	for i := 0; i < 12; i++ {
		nodes = append(nodes, node(fmt.Sprintf("b%d", i), map[string]value.Value{"sleep": value.String{S: "20ms"}}))
	}
	sum := engine.Run(context.Background(), graph(t, reg, nodes...), reg, event.NewBus(), engine.RunOptions{Parallel: 3})
	if !sum.OK() {
		t.Fatalf("run failed: %+v", sum.Results[0])
	}
	if p := rec.peak.Load(); p != 3 {
		t.Errorf("peak concurrency %d, want 3", p)
	}
}

func TestOutputsFlowAlongEdges(t *testing.T) {
	rec := &recorder{}
	reg := taskRegistry(rec)
	base := node("base", map[string]value.Value{"input": value.String{S: "ami-1"}})
	web := node("web", map[string]value.Value{"input": &value.Template{Parts: []value.Part{
		{Lit: "from-"}, {Ref: &value.Ref{Build: "base", Output: "value"}}, {Lit: "-"}, {Ref: &value.Ref{Build: "base", Output: "id"}},
	}}})
	sum := engine.Run(context.Background(), graph(t, reg, base, web), reg, event.NewBus(), engine.RunOptions{})
	if !sum.OK() {
		t.Fatalf("run failed: %v", sum.Result("web").Err)
	}
	if got := sum.Result("web").Artifact.Fields["value"]; got != "from-ami-1-id-base" {
		t.Errorf("web's input resolved to %q", got)
	}
}

func TestFailedBuildSkipsDependentsWithReasonAndOthersGoOn(t *testing.T) {
	rec := &recorder{}
	reg := taskRegistry(rec)
	g := graph(t, reg,
		node("base", map[string]value.Value{"fail": value.String{S: "work"}}),
		node("web", nil, "base"),
		node("web-dev", nil, "web"),
		node("other", map[string]value.Value{"sleep": value.String{S: "30ms"}}),
	)
	var finished []string
	var mu sync.Mutex
	bus := event.NewBus(event.SinkFunc(func(e event.Event) {
		if e.Type == event.BuildFinished {
			mu.Lock()
			finished = append(finished, fmt.Sprintf("%s %s %s%s", e.Build, e.Status, e.Message, e.Error))
			mu.Unlock()
		}
	}))
	sum := engine.Run(context.Background(), g, reg, bus, engine.RunOptions{})
	want := map[string]event.Status{"base": event.Failed, "web": event.Skipped, "web-dev": event.Skipped, "other": event.Succeeded}
	for name, st := range want {
		if got := sum.Result(name).Status; got != st {
			t.Errorf("%s: %s, want %s", name, got, st)
		}
	}
	if msg := sum.Result("web").Err.Error(); msg != `it needs "base", which failed` {
		t.Errorf("web's reason: %q", msg)
	}
	if msg := sum.Result("web-dev").Err.Error(); msg != `it needs "web", which was skipped` {
		t.Errorf("web-dev's reason: %q", msg)
	}
	if msg := sum.Result("base").Err.Error(); msg != "work: scripted failure" {
		t.Errorf("base's error: %q", msg)
	}
	// The failed build cleaned up what ran, in reverse, knowing it failed.
	var cleanups []string
	for _, e := range rec.list() {
		if strings.HasPrefix(e, "base clean") {
			cleanups = append(cleanups, e)
		}
	}
	if strings.Join(cleanups, "; ") != "base clean work failed=true; base clean prepare failed=true" {
		t.Errorf("cleanups: %v", cleanups)
	}
	if len(finished) != 4 {
		t.Errorf("build_finished events: %v", finished)
	}
}

func TestFailFastCancelsSiblings(t *testing.T) {
	rec := &recorder{}
	reg := taskRegistry(rec)
	g := graph(t, reg,
		node("slow", map[string]value.Value{"sleep": value.String{S: "120s"}}),
		node("bad", map[string]value.Value{"fail": value.String{S: "work"}, "after": value.String{S: "slow"}}),
		node("later", nil, "slow"),
	)
	start := time.Now()
	sum := engine.Run(context.Background(), g, reg, event.NewBus(), engine.RunOptions{FailFast: true})
	// Far below the slow build's sleep, however busy the machine.
	if time.Since(start) > 60*time.Second {
		t.Fatal("fail-fast did not cancel the slow build")
	}
	if s := sum.Result("slow").Status; s != event.Cancelled {
		t.Errorf("slow: %s, want cancelled", s)
	}
	if s := sum.Result("later").Status; s != event.Skipped {
		t.Errorf("later: %s, want skipped", s)
	}
	if !slices.Contains(rec.list(), "slow clean work failed=true") {
		t.Errorf("the cancelled build did not clean up: %v", rec.list())
	}
}

func TestCancelStopsRunningBuildsAndCleansUp(t *testing.T) {
	rec := &recorder{}
	reg := taskRegistry(rec)
	g := graph(t, reg,
		node("a", map[string]value.Value{"sleep": value.String{S: "10s"}}),
		node("b", nil, "a"),
	)
	ctx, cancel := context.WithCancel(context.Background())
	tracker := step.NewTracker()
	bus := event.NewBus(event.SinkFunc(func(e event.Event) {
		if e.Type == event.StepStarted && e.Step == "work" {
			if got := tracker.Pending(); strings.Join(got, ",") != "a: prepare of a,a: work of a" {
				t.Errorf("pending while running: %v", got)
			}
			go cancel()
		}
	}))
	sum := engine.Run(ctx, g, reg, bus, engine.RunOptions{Tracker: tracker})
	if s := sum.Result("a").Status; s != event.Cancelled {
		t.Errorf("a: %s, want cancelled", s)
	}
	if s := sum.Result("b").Status; s != event.Skipped {
		t.Errorf("b: %s, want skipped", s)
	}
	if left := tracker.Pending(); len(left) != 0 {
		t.Errorf("left after cleanup: %v", left)
	}
}

func TestOnErrorAbortKeepsAndListsWhatWasMade(t *testing.T) {
	rec := &recorder{}
	reg := taskRegistry(rec)
	g := graph(t, reg, node("a", map[string]value.Value{"fail": value.String{S: "capture"}}))
	var kept []string
	bus := event.NewBus(event.SinkFunc(func(e event.Event) {
		if e.Type == event.Leftover {
			kept = append(kept, e.Items...)
		}
	}))
	engine.Run(context.Background(), g, reg, bus, engine.RunOptions{OnError: step.Abort})
	for _, e := range rec.list() {
		if strings.Contains(e, "clean") {
			t.Errorf("cleanup ran under abort: %s", e)
		}
	}
	if len(kept) != 4 || strings.Join(kept[:3], ", ") != "prepare of a, work of a, capture of a" || !strings.HasPrefix(kept[3], "scratch directory ") {
		t.Errorf("listed as kept: %v", kept)
	} else if _, err := os.Stat(strings.TrimPrefix(kept[3], "scratch directory ")); err != nil {
		t.Errorf("the scratch directory was not kept: %v", err)
	} else {
		os.RemoveAll(strings.TrimPrefix(kept[3], "scratch directory "))
	}
}
