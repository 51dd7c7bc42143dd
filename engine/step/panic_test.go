package step

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/panics"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// TestAPanicAtEveryStepIsThatStepsErrorAndTheCleanupsStillRun panics at
// step k, for every k (in the step itself and in the runner's hook), and
// checks that the steps before k are cleaned up, in reverse order, as
// failed, and that the error and the log say what happened.
func TestAPanicAtEveryStepIsThatStepsErrorAndTheCleanupsStillRun(t *testing.T) {
	names := []string{"key pair", "security group", "instance", "image"}
	for _, where := range []string{"step", "hook"} {
		for k := range names {
			t.Run(fmt.Sprintf("%s/%s", where, names[k]), func(t *testing.T) {
				var cleaned []string
				var steps []Step
				for i, n := range names {
					steps = append(steps, &Func{StepName: n,
						RunFunc: func(context.Context) error {
							if where == "step" && i == k {
								var m map[string]bool
								m[n] = true
							}
							return nil
						},
						CleanFunc: func(_ context.Context, failed bool) error {
							cleaned = append(cleaned, fmt.Sprintf("%s failed=%v", n, failed))
							return nil
						},
					})
				}
				rec := &testkit.Recorder{}
				r := &Runner{UI: event.NewUI(event.NewBus(rec), "web", "x")}
				if where == "hook" {
					r.Hooks = &Hooks{Before: func(_ context.Context, _ *event.UI, s Step) error {
						if s.Name() == names[k] {
							panic("hooked at " + s.Name())
						}
						return nil
					}}
				}
				err := r.Run(context.Background(), steps...)
				var pe *panics.Error
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v, want a panic", err)
				}
				if !strings.HasPrefix(err.Error(), names[k]+": panic: ") {
					t.Errorf("err = %q, want it to start with the step's name", err)
				}
				var want []string
				for i := k; i >= 0; i-- {
					want = append(want, names[i]+" failed=true")
				}
				if fmt.Sprint(cleaned) != fmt.Sprint(want) {
					t.Errorf("cleaned %v, want %v", cleaned, want)
				}
				if d := strings.Join(rec.Messages(event.Detail), ""); !strings.Contains(d, "stack of the panic:") || !strings.Contains(d, "panic_test.go") {
					t.Errorf("the log lacks the stack:\n%s", d)
				}
			})
		}
	}
}

func TestAPanickingCleanupIsACleanupFailureAndTheOthersStillRun(t *testing.T) {
	var cleaned []string
	r := &Runner{}
	err := r.Run(context.Background(),
		&Func{StepName: "first", CleanFunc: func(context.Context, bool) error { cleaned = append(cleaned, "first"); return nil }},
		&Func{StepName: "second", CleanFunc: func(context.Context, bool) error { panic("cleanup bug") },
			LeftFunc: func() []string { return []string{"instance i-1"} }},
		&Func{StepName: "third", RunFunc: func(context.Context) error { return errors.New("boom") }},
	)
	if fmt.Sprint(cleaned) != "[first]" {
		t.Errorf("cleaned %v", cleaned)
	}
	var ce *CleanupError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "second: panic: cleanup bug") || !strings.Contains(err.Error(), "may be left: instance i-1") {
		t.Errorf("err = %v", err)
	}
}

// TestCleanupsRunWhenTheRunnerItselfPanics breaks the runner outside any
// step (the tracker's lock held by a bug): the deferred cleanups still run.
func TestCleanupsRunWhenTheRunnerItselfPanics(t *testing.T) {
	var cleaned []string
	tr := NewTracker()
	r := &Runner{Tracker: tr}
	err := r.Run(context.Background(),
		&Func{StepName: "first", CleanFunc: func(context.Context, bool) error { cleaned = append(cleaned, "first"); return nil },
			RunFunc: func(context.Context) error { tr.pending = nil; return nil }}, // the next add writes to a nil map
		&Func{StepName: "second", CleanFunc: func(context.Context, bool) error { cleaned = append(cleaned, "second"); return nil }},
	)
	var pe *panics.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a panic", err)
	}
	// The step being started counts as run: its cleanup must cope with
	// having made nothing, as after a failure at its first line.
	if fmt.Sprint(cleaned) != "[second first]" {
		t.Errorf("cleaned %v", cleaned)
	}
}
