package testkit

import (
	"testing"
	"time"
)

// WaitTimeout bounds [Eventually] and [Receive]. Only a failing test waits
// that long, so it is generous: a loaded CI machine must not fail a test
// that would have passed.
const WaitTimeout = 60 * time.Second

// Eventually waits until cond holds, checking it at once and then at
// short, growing intervals, and fails the test saying what it waited for
// if it does not hold within [WaitTimeout].
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, WaitTimeout, what, cond)
}

// EventuallyWithin is [Eventually] with its own deadline, for a test whose
// point is that something happens within d.
func EventuallyWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(d, cond) {
		t.Fatalf("waited %s for %s", d, what)
	}
}

// Poll waits until cond holds or d passes, checking it at once and then at
// short, growing intervals, and reports whether it held. A test uses it
// where running out of time is not itself the failure: to give processes
// a moment to go before listing those left.
func Poll(d time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	interval := time.Millisecond
	for {
		if cond() {
			return true
		}
		next := time.NewTimer(interval)
		select {
		case <-deadline.C:
			next.Stop()
			return cond()
		case <-next.C:
		}
		interval = min(2*interval, 50*time.Millisecond)
	}
}

// Receive returns the next value on ch (the zero value once ch is closed:
// closing is a signal too), failing the test saying what it waited for if
// nothing comes within [WaitTimeout].
func Receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(WaitTimeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("waited %s for %s", WaitTimeout, what)
	}
	var zero T
	return zero
}
