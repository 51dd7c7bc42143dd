// Package retry is the one way imgbuild waits and tries again: Do calls an
// operation until it succeeds, with waits that grow between the tries, and
// Sleep is the context-aware sleep every wait uses; Every is the loop of the
// watchers that poll on a ticker. The SSH communicator's dialling and
// keepalives, the amazon driver's waiters and cleanups and the shell
// provisioner's max_retries are written with it.
//
// It is our own small helper rather than a backoff library because the
// callers need what those do not give together: the error of the last try
// (not the context's) when a cleanup's time limit ends, waits cut short at
// a deadline so that a waiter polls once more before giving up, and no
// jitter, so that what a test waits for is predictable. It knows no
// platform.
package retry

import (
	"context"
	"errors"
	"time"
)

// Backoff says how long to wait between tries: First after the first
// failure, then each wait Factor times the one before, at most Max. A
// Factor of 0 or 1 keeps the waits the same; a Max of 0 does not cap them.
type Backoff struct {
	First  time.Duration
	Max    time.Duration
	Factor float64
	// Deadline, when set, cuts every wait short at it, so that the
	// operation is tried once more at the deadline.
	Deadline time.Time
}

// next is the wait after w.
func (b Backoff) next(w time.Duration) time.Duration {
	if b.Factor > 1 {
		w = time.Duration(float64(w) * b.Factor)
	}
	if b.Max > 0 && w > b.Max {
		w = b.Max
	}
	return w
}

// Notify is told, before each wait, which try failed, why, and how long
// Do waits before the next.
type Notify func(attempt int, err error, wait time.Duration)

// permanent marks an error that another try would not change.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent marks err as not worth another try: Do returns it (unwrapped)
// at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err}
}

// Do calls op (with the try's number, from 1) until it returns nil, it
// returns an error marked Permanent, it has been called attempts times
// (0: no limit), or ctx has ended; between two calls it waits as b says,
// telling notify (when not nil) first. It returns nil, op's last error
// (unwrapped when Permanent), or ctx's cause when ctx ends during a wait.
func Do(ctx context.Context, b Backoff, attempts int, notify Notify, op func(ctx context.Context, attempt int) error) error {
	wait := b.First
	for attempt := 1; ; attempt++ {
		err := op(ctx, attempt)
		if err == nil {
			return nil
		}
		var p *permanent
		if errors.As(err, &p) {
			return p.err
		}
		if attempts > 0 && attempt >= attempts || ctx.Err() != nil {
			return err
		}
		w := wait
		if !b.Deadline.IsZero() {
			w = max(0, min(w, time.Until(b.Deadline)))
		}
		if notify != nil {
			notify(attempt, err, w)
		}
		if err := Sleep(ctx, w); err != nil {
			return err
		}
		wait = b.next(wait)
	}
}

// Sleep waits d, or until ctx ends: then it returns ctx's cause. A d of 0
// or less returns at once.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Every calls tick every interval, the first time one interval from now,
// until stop is closed or tick returns false. It is the loop behind the
// watchers that poll on a ticker: SSH keepalives, the evaluation's memory
// watch, the S3 lock's lease renewal and vcsim's power-off watch.
func Every(stop <-chan struct{}, interval time.Duration, tick func() bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if !tick() {
				return
			}
		}
	}
}
