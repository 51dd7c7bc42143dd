package panics

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestCallTurnsAPanicIntoAnErrorWithTheStack(t *testing.T) {
	err := Call(func() error {
		var m map[string]int
		m["x"] = 1 // a nil-map write: the bug the issue names
		return nil
	})
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a *panics.Error", err)
	}
	if want := "panic: assignment to entry in nil map (a bug in imgbuild: the stack is in the build's log; please report it)"; err.Error() != want {
		t.Errorf("err = %q\nwant  %q", err, want)
	}
	if !strings.Contains(pe.Stack, "panics_test.go") {
		t.Errorf("the stack does not show where it panicked:\n%s", pe.Stack)
	}
	var re interface{ RuntimeError() }
	if !errors.As(err, &re) {
		t.Error("the runtime error is not unwrapped")
	}
}

func TestCallPassesErrorsThrough(t *testing.T) {
	want := errors.New("plain")
	if err := Call(func() error { return want }); err != want {
		t.Errorf("err = %v", err)
	}
}

func TestGoGivesThePanicToTheContextsHandler(t *testing.T) {
	got := make(chan *Error, 1)
	ctx := WithHandler(context.Background(), func(e *Error) { got <- e })
	// Handlers survive contexts that drop cancellation, as cleanups use.
	Go(context.WithoutCancel(ctx), func() { panic("in a goroutine") })
	e := <-got
	if e.Value != "in a goroutine" || !strings.Contains(e.Stack, "panics_test.go") {
		t.Errorf("handler got %v with stack:\n%s", e.Value, e.Stack)
	}
}

func TestFirstLogIsTrueOnce(t *testing.T) {
	e := New("x")
	if !e.FirstLog() || e.FirstLog() {
		t.Error("FirstLog should be true once, then false")
	}
	if New(e) != e {
		t.Error("New of an *Error should return it")
	}
}
