package amazon

import (
	"context"
	"fmt"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
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
	delay := w.delay
	said := start
	for {
		st, err := poll(ctx)
		if err != nil {
			return err
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
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return fmt.Errorf("gave up waiting for %s after %s: it is still %s; if it is only slow, raise %s (it is %s)",
				what, w.timeout, st.state, w.keyword, w.timeout)
		}
		t := time.NewTimer(min(delay, remaining))
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
		delay = min(delay*3/2, w.maxDelay)
	}
}
