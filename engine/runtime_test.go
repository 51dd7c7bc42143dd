package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/value"
)

func runValue(name, layout string, lit ...string) *value.Template {
	parts := []value.Part{}
	if len(lit) > 0 {
		parts = append(parts, value.Part{Lit: lit[0]})
	}
	parts = append(parts, value.Part{Run: &value.RunValue{Name: name, Layout: layout}})
	return &value.Template{Parts: parts}
}

func TestRunValuesResolveOnceAtRunStartTheSameForEveryBuild(t *testing.T) {
	rec := &recorder{}
	reg := taskRegistry(rec)
	var nodes []*engine.Node
	for _, name := range []string{"a", "b", "c"} {
		nodes = append(nodes, node(name, map[string]value.Value{
			"input": runValue(value.RunTimestamp, "", "base-"),
			"after": value.String{}, // keeps the fixture's keyword set
		}))
	}
	// One build formats the time and another takes the run's id.
	nodes[1].Settings.Set("input", runValue(value.RunTimestamp, "YYYYMMDD-hhmmss", "web-"))
	nodes[2].Settings.Set("input", runValue(value.RunID, "", "run-"))
	start := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))
	g := graph(t, reg, nodes...)
	sum := engine.Run(context.Background(), g, reg, event.NewBus(), engine.RunOptions{Parallel: 3, Start: start, RunID: "20260304-040607.000"})
	if !sum.OK() {
		t.Fatalf("run failed: %v", sum.Results)
	}
	got := []any{sum.Result("a").Artifact.Fields["value"], sum.Result("b").Artifact.Fields["value"], sum.Result("c").Artifact.Fields["value"]}
	want := []any{"base-2026-03-04T04:06:07Z", "web-20260304-040607", "run-20260304-040607.000"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("build %d: input %q, want %q", i, got[i], want[i])
		}
	}
	// The graph keeps the run values: the plan shows them, and the
	// fingerprint does not change from one run to the next.
	plan := engine.MakePlan(g, reg, "")
	if v := plan.Builds[0].Settings[0].Value; v != `"base-" + (at run: timestamp)` {
		t.Errorf("plan shows %s", v)
	}
	if v := plan.Builds[1].Settings[0].Value; v != `"web-" + (at run: timestamp.format("YYYYMMDD-hhmmss"))` {
		t.Errorf("plan shows %s", v)
	}
	fingerprint := func() string {
		in, err := (&engine.Fingerprinter{Registry: reg}).Inputs(context.Background(), g.Nodes[0], nil, false)
		if err != nil {
			t.Fatal(err)
		}
		return in.Fingerprint()
	}
	fp := fingerprint()
	reg2 := taskRegistry(&recorder{})
	sum2 := engine.Run(context.Background(), g, reg2, event.NewBus(), engine.RunOptions{Start: start.Add(time.Hour)})
	if !sum2.OK() {
		t.Fatalf("second run failed: %v", sum2.Result("a").Err)
	}
	if got := sum2.Result("a").Artifact.Fields["value"]; got != "base-2026-03-04T05:06:07Z" {
		t.Errorf("second run: input %q", got)
	}
	if fp2 := fingerprint(); fp2 != fp {
		t.Errorf("fingerprint changed between runs: %s, then %s", fp, fp2)
	}
}

func TestRunValueWithABadLayoutFailsTheBuildAtItsPosition(t *testing.T) {
	rec := &recorder{}
	reg := taskRegistry(rec)
	g := graph(t, reg, node("a", map[string]value.Value{"input": runValue(value.RunTimestamp, "YYYY-QQ")}))
	sum := engine.Run(context.Background(), g, reg, event.NewBus(), engine.RunOptions{})
	err := sum.Result("a").Err
	if err == nil || !strings.HasPrefix(err.Error(), `t.star:1:1: layout "YYYY-QQ": `) {
		t.Errorf("error = %v", err)
	}
}
