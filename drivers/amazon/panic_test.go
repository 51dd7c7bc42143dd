package amazon_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/amazon/awstest"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/panics"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// makes says whether an API call creates something a build must remove.
func makes(call string) bool {
	op := strings.TrimPrefix(strings.Fields(call)[0], "EC2.")
	for _, p := range []string{"Run", "Create", "Import", "Copy", "Request"} {
		if strings.HasPrefix(op, p) {
			return true
		}
	}
	return false
}

// TestAPanicAtEveryStepAndAfterEveryCreatingCallLeavesNothing breaks a
// full build (copies to two regions, permissions, a provisioner) with a
// panic: at the start of every step (a test hook the step runner calls as
// part of the step), and right after every API call that creates something
// (the resource made, its id lost, as a nil-map write in the driver would
// lose it; the copies' calls panic in the goroutines the driver starts for
// each region). Each time the build fails with the panic, the other builds
// are not concerned, and moto holds nothing the build made, counted as the
// fault loop counts it.
func TestAPanicAtEveryStepAndAfterEveryCreatingCallLeavesNothing(t *testing.T) {
	h := newHarness(t)
	regions := laneRegions[0]
	l := &faultLoop{h: h, regions: regions, baseline: h.moto.Inventory(t, regions...)}
	src := func(i int) string { return faultSource(h, regions, fmt.Sprintf("panic-%d", i), true) }
	calls, steps, res := l.dry(src(0))
	if res.Status != event.Succeeded {
		t.Fatalf("the build without faults: %s: %v", res.Status, res.Err)
	}
	check := func(what string, r faultRun) {
		t.Helper()
		var pe *panics.Error
		if r.status != event.Failed || !errors.As(r.err, &pe) {
			t.Errorf("%s: the build %s (%v), want it failed by the panic", what, r.status, r.err)
		}
	}
	n := 0
	for _, s := range steps {
		n++
		r := l.run("panic at step "+s, src(n), func(cancel context.CancelFunc, rec *testkit.Recorder) {
			h.faults.Reset()
			h.hooks = &step.Hooks{Before: func(_ context.Context, _ *event.UI, st step.Step) error {
				if st.Name() == s {
					var m map[string]bool
					m[s] = true // the nil-map write of the issue
				}
				return nil
			}}
		})
		h.hooks = nil
		check("panic at step "+s, r)
	}
	creating := 0
	for k, c := range calls {
		if !makes(c) {
			continue
		}
		creating++
		n++
		what := fmt.Sprintf("panic after call %d (%s)", k+1, c)
		check(what, l.run(what, src(n), func(cancel context.CancelFunc, rec *testkit.Recorder) {
			h.faults.Arm(cancel, awstest.Fault{K: k + 1, Mode: awstest.PanicAfter})
		}))
	}
	h.faults.Reset()
	t.Logf("panics tried: %d (%d steps, %d creating calls of %d); leaks found: %d", len(l.runs), len(steps), creating, len(calls), l.leaks())
}
