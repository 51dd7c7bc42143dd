package step

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

func TestFailedCleanupIsReportedWithWhatWasLeft(t *testing.T) {
	ui, rec := testkit.NewUI("web", "x")
	r := &Runner{UI: ui}
	err := r.Run(context.Background(),
		&Func{StepName: "key pair", CleanFunc: func(context.Context, bool) error { return nil }},
		&Func{StepName: "instance",
			CleanFunc: func(context.Context, bool) error { return errors.New("TerminateInstances: throttled") },
			LeftFunc:  func() []string { return []string{"instance i-123 in eu-west-1"} }},
	)
	var ce *CleanupError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a CleanupError", err)
	}
	if want := "cleanup failed: instance: TerminateInstances: throttled; may be left: instance i-123 in eu-west-1"; err.Error() != want {
		t.Errorf("err = %q\nwant  %q", err, want)
	}
	found := false
	for _, e := range rec.Events() {
		found = found || (e.Type == event.CleanupFailed && e.Items[0] == "instance i-123 in eu-west-1")
	}
	if !found {
		t.Error("no cleanup_failed event listing the instance")
	}
}

func TestCleanupRunsDespiteCancellationWithItsOwnLimit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var cleanupCtxErr error
	r := &Runner{UI: nil, CleanupTimeout: 50 * time.Millisecond}
	err := r.Run(ctx,
		&Func{StepName: "launch",
			RunFunc: func(ctx context.Context) error { cancel(); <-ctx.Done(); return ctx.Err() },
			CleanFunc: func(ctx context.Context, failed bool) error {
				cleanupCtxErr = ctx.Err() // must not be cancelled
				<-ctx.Done()              // then hits its own limit
				return nil
			}},
		&Func{StepName: "never", RunFunc: func(context.Context) error { t.Error("ran after cancel"); return nil }},
	)
	if cleanupCtxErr != nil {
		t.Errorf("cleanup started with a cancelled context: %v", cleanupCtxErr)
	}
	if err == nil || !strings.Contains(err.Error(), "launch: context canceled") || !strings.Contains(err.Error(), "launch: timed out after 50ms") {
		t.Errorf("err = %v", err)
	}
}

func TestSuccessfulBuildCleansUpTemporariesKnowingItSucceeded(t *testing.T) {
	var calls []string
	mk := func(name string) Step {
		return &Func{StepName: name, CleanFunc: func(_ context.Context, failed bool) error {
			if failed {
				calls = append(calls, name+" failed")
			} else {
				calls = append(calls, name+" ok")
			}
			return nil
		}}
	}
	if err := (&Runner{}).Run(context.Background(), mk("a"), mk("b")); err != nil {
		t.Fatal(err)
	}
	if strings.Join(calls, ",") != "b ok,a ok" {
		t.Errorf("cleanups: %v", calls)
	}
}

func TestArtifactStepsCleanUpAfterPostProcessing(t *testing.T) {
	var calls []string
	mk := func(name string, artifact bool) Step {
		return &Func{StepName: name, Artifact: artifact, CleanFunc: func(_ context.Context, failed bool) error {
			calls = append(calls, fmt.Sprintf("%s failed=%v", name, failed))
			return nil
		}}
	}
	r := &Runner{}
	if err := r.Run(context.Background(), mk("instance", false), mk("image", true)); err != nil {
		t.Fatal(err)
	}
	if strings.Join(calls, ",") != "instance failed=false" {
		t.Fatalf("after Run: %v (the image's cleanup must wait)", calls)
	}
	// A post-processor failed: the image goes.
	if err := r.Finish(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if strings.Join(calls, ",") != "instance failed=false,image failed=true" {
		t.Errorf("after Finish: %v", calls)
	}
}

func TestBeforeHookRunsBeforeEveryStepAndItsErrorStopsTheBuild(t *testing.T) {
	var seen []string
	r := &Runner{Hooks: &Hooks{Before: func(_ context.Context, _ *event.UI, s Step) error {
		seen = append(seen, s.Name())
		if s.Name() == "capture" {
			return errors.New("aborted by the user")
		}
		return nil
	}}}
	cleaned := false
	err := r.Run(context.Background(),
		&Func{StepName: "launch", CleanFunc: func(context.Context, bool) error { cleaned = true; return nil }},
		&Func{StepName: "capture", RunFunc: func(context.Context) error { t.Error("capture ran"); return nil }},
	)
	if err == nil || err.Error() != "capture: aborted by the user" {
		t.Errorf("err = %v", err)
	}
	if strings.Join(seen, ",") != "launch,capture" || !cleaned {
		t.Errorf("hook saw %v, launch cleaned up: %v", seen, cleaned)
	}
}

func TestFailedHookRetryUndoesTheAttemptAndRunsTheStepAgain(t *testing.T) {
	attempts, cleanups := 0, 0
	r := &Runner{Hooks: &Hooks{Failed: func(_ context.Context, _ *event.UI, s Step, err error) Decision {
		if err.Error() != "provision: exit status 1" {
			t.Errorf("hook got %v", err)
		}
		return Retry
	}}}
	err := r.Run(context.Background(), &Func{StepName: "provision",
		RunFunc: func(context.Context) error {
			if attempts++; attempts < 3 {
				return errors.New("exit status 1")
			}
			return nil
		},
		CleanFunc: func(_ context.Context, failed bool) error {
			if failed {
				cleanups++
			}
			return nil
		},
	})
	if err != nil || attempts != 3 || cleanups != 2 {
		t.Errorf("err %v, %d attempts, %d cleanups of failed attempts (want nil, 3, 2)", err, attempts, cleanups)
	}
}

func TestFailedHookDecidesKeepOrCleanUpWhateverThePolicy(t *testing.T) {
	for _, c := range []struct {
		policy  Policy
		decide  Decision
		cleaned bool
	}{{Cleanup, KeepAll, false}, {Abort, CleanUpAll, true}, {Cleanup, FollowPolicy, true}, {Abort, FollowPolicy, false}} {
		ui, _ := testkit.NewUI("web", "x")
		cleaned := false
		r := &Runner{UI: ui, OnError: c.policy, Hooks: &Hooks{Failed: func(context.Context, *event.UI, Step, error) Decision { return c.decide }}}
		r.Run(context.Background(),
			&Func{StepName: "launch", CleanFunc: func(context.Context, bool) error { cleaned = true; return nil }, LeftFunc: func() []string { return []string{"vm 1"} }},
			&Func{StepName: "provision", RunFunc: func(context.Context) error { return errors.New("boom") }},
		)
		if cleaned != c.cleaned {
			t.Errorf("policy %v, decision %v: cleaned %v, want %v", c.policy, c.decide, cleaned, c.cleaned)
		}
	}
}

func TestFailedHookIsNotAskedWhenTheBuildWasCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Hooks: &Hooks{Failed: func(context.Context, *event.UI, Step, error) Decision { t.Error("asked"); return Retry }}}
	r.Run(ctx, &Func{StepName: "wait", RunFunc: func(ctx context.Context) error { cancel(); return ctx.Err() }})
}

// TestACancelDuringTheLastStepCancelsTheBuild: the last step's call was
// answered before the cancel was seen, so the step succeeded; the build is
// cancelled all the same, and every step cleans up knowing it failed.
func TestACancelDuringTheLastStepCancelsTheBuild(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls []string
	err := (&Runner{}).Run(ctx,
		&Func{StepName: "create", Artifact: true, CleanFunc: func(_ context.Context, failed bool) error {
			calls = append(calls, fmt.Sprintf("create failed=%v", failed))
			return nil
		}},
		&Func{StepName: "convert", RunFunc: func(context.Context) error { cancel(); return nil }},
	)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want the cancel", err)
	}
	if strings.Join(calls, ",") != "create failed=true" {
		t.Errorf("cleanups: %v", calls)
	}
}
