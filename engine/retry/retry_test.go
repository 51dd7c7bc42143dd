package retry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestDoTriesUntilItSucceedsWithGrowingCappedWaits(t *testing.T) {
	var waits []time.Duration
	n := 0
	err := Do(context.Background(), Backoff{First: time.Millisecond, Max: 4 * time.Millisecond, Factor: 2}, 0,
		func(_ int, _ error, w time.Duration) { waits = append(waits, w) },
		func(context.Context, int) error {
			if n++; n < 5 {
				return errors.New("not yet")
			}
			return nil
		})
	if err != nil || n != 5 {
		t.Fatalf("err %v after %d tries, want nil after 5", err, n)
	}
	want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
}

func TestDoStopsAfterAttemptsWithTheLastError(t *testing.T) {
	n := 0
	err := Do(context.Background(), Backoff{First: time.Microsecond}, 3, nil, func(_ context.Context, attempt int) error {
		n++
		return fmt.Errorf("try %d failed", attempt)
	})
	if n != 3 || err == nil || err.Error() != "try 3 failed" {
		t.Fatalf("%d tries, %v; want 3 and the third's error", n, err)
	}
}

func TestAPermanentErrorIsReturnedAtOnceUnwrapped(t *testing.T) {
	denied := errors.New("access denied")
	n := 0
	err := Do(context.Background(), Backoff{First: time.Microsecond}, 0, nil, func(context.Context, int) error {
		n++
		return Permanent(denied)
	})
	if n != 1 || err != denied {
		t.Fatalf("%d tries, %v; want 1 and the error itself", n, err)
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
}

func TestCancellingDuringAWaitReturnsTheCause(t *testing.T) {
	why := errors.New("the build was cancelled")
	ctx, cancel := context.WithCancelCause(context.Background())
	err := Do(ctx, Backoff{First: time.Hour}, 0, func(int, error, time.Duration) { cancel(why) },
		func(context.Context, int) error { return errors.New("not yet") })
	if err != why {
		t.Fatalf("got %v, want the cancellation's cause", err)
	}
}

func TestADeadlineCutsTheWaitShortForOneLastTry(t *testing.T) {
	deadline := time.Now().Add(20 * time.Millisecond)
	var tries []time.Time
	err := Do(context.Background(), Backoff{First: time.Hour, Deadline: deadline}, 0, nil, func(context.Context, int) error {
		tries = append(tries, time.Now())
		if len(tries) == 2 {
			return Permanent(errors.New("gave up"))
		}
		return errors.New("not yet")
	})
	if err == nil || err.Error() != "gave up" || len(tries) != 2 || tries[1].Before(deadline) {
		t.Fatalf("err %v, tries %v: want a second try at the deadline", err, tries)
	}
}

func TestSleepEndsWithTheContext(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestEveryTicksUntilTickSaysStop(t *testing.T) {
	n := 0
	Every(make(chan struct{}), time.Millisecond, func() bool { n++; return n < 3 })
	if n != 3 {
		t.Errorf("tick called %d times, want 3 (it returned false on the third)", n)
	}
}

func TestEveryReturnsWhenStopIsClosed(t *testing.T) {
	stop := make(chan struct{})
	ticked := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(stop, time.Millisecond, func() bool {
			select {
			case ticked <- struct{}{}:
			default:
			}
			return true
		})
	}()
	<-ticked
	close(stop)
	<-done
}
