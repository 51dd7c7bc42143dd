package amazon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/retry"
)

// waiter polls until something is ready, backing off, and gives up after a
// time limit named by one keyword (so the error can say which to raise),
// never after a count of attempts.
type waiter struct {
	ui       *event.UI
	delay    time.Duration // first delay between polls
	maxDelay time.Duration
	timeout  time.Duration
	keyword  string // the option that sets timeout

	// sayEvery is how often a wait still going on is reported in words.
	sayEvery time.Duration
}

func newWaiter(ui *event.UI, delay, timeout time.Duration, keyword string) *waiter {
	maxDelay := min(10*delay, 30*time.Second)
	maxDelay = max(maxDelay, delay)
	return &waiter{ui: ui, delay: delay, maxDelay: maxDelay, timeout: timeout, keyword: keyword, sayEvery: 30 * time.Second}
}

// status is what one poll saw.
type status struct {
	done  bool
	state string // "pending", "stopping", ... for messages
	// percent is how far along it is (0 to 100), or -1 when unknown.
	percent int
}

// wait polls until poll says done, poll fails, ctx ends or the time limit
// passes. Every poll is reported as progress: a percentage when poll knows
// one, else the seconds waited so far.
func (w *waiter) wait(ctx context.Context, what string, poll func(ctx context.Context) (status, error)) error {
	start := time.Now()
	deadline := start.Add(w.timeout)
	said := start
	b := retry.Backoff{First: w.delay, Max: w.maxDelay, Factor: 1.5, Deadline: deadline}
	err := retry.Do(ctx, b, 0, nil, func(ctx context.Context, _ int) error {
		st, err := poll(ctx)
		if err != nil {
			return retry.Permanent(err)
		}
		if st.done {
			if st.percent >= 0 {
				w.ui.Progress(what, 100, 100, "%")
			}
			return nil
		}
		elapsed := time.Since(start)
		if st.percent >= 0 {
			w.ui.Progress(what+" ("+st.state+")", int64(st.percent), 100, "%")
		} else {
			w.ui.Progress(what+" ("+st.state+")", int64(elapsed.Seconds()), 0, "s waited")
		}
		if time.Since(said) >= w.sayEvery {
			w.ui.Say("still waiting for %s: %s after %s", what, st.state, elapsed.Round(time.Second))
			said = time.Now()
		}
		if time.Until(deadline) <= 0 {
			return retry.Permanent(fmt.Errorf("gave up waiting for %s after %s: it is still %s; if it is only slow, raise %s (it is %s)",
				what, w.timeout, st.state, w.keyword, w.timeout))
		}
		return errPending
	})
	if errors.Is(err, errPending) {
		// Cancelled before a wait.
		return context.Cause(ctx)
	}
	return err
}

// errPending is a poll's answer while what it waits for is not ready.
var errPending = errors.New("not ready yet")
