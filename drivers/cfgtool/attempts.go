package cfgtool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
)

// ErrPermanent marks a failure another attempt cannot mend (a playbook that
// does not parse): Attempts returns it at once.
var ErrPermanent = errors.New("running it again would not help")

// RetryDelay is the wait between attempts.
var RetryDelay = 2 * time.Second

// Attempts runs fn, and while it fails runs it again, up to retries more
// times (a provisioner's max_retries), waiting RetryDelay in between and
// saying so. It stops at once when ctx is done or the error wraps
// ErrPermanent. The error of the last attempt is returned, saying how many
// were made.
func Attempts(ctx context.Context, ui *event.UI, what string, retries int, fn func(ctx context.Context) error) error {
	attempts := 1 + max(retries, 0)
	for i := 1; ; i++ {
		err := fn(ctx)
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrPermanent) {
			return err
		}
		if i == attempts {
			if attempts > 1 {
				return fmt.Errorf("%w (after %d attempts; max_retries = %d)", err, attempts, retries)
			}
			return err
		}
		ui.Warn("%s failed (attempt %d of %d); trying again in %s: %v", what, i, attempts, RetryDelay, err)
		t := time.NewTimer(RetryDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		}
	}
}

// WithTimeout runs run under a provisioner's timeout d (0: none). When the
// timeout cut the run short, its error says so: what timed out after d,
// and what to do.
func WithTimeout(ctx context.Context, what string, d time.Duration, run func(context.Context) error) error {
	if d <= 0 {
		return run(ctx)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, d, errTimeout)
	defer cancel()
	err := run(ctx)
	if err != nil && errors.Is(context.Cause(ctx), errTimeout) {
		return fmt.Errorf("%s timed out after %s (timeout = %q): make it faster or raise timeout; %w", what, d, d.String(), err)
	}
	return err
}

var errTimeout = errors.New("the provisioner's timeout passed")

// Permanent marks err as a failure another attempt cannot mend; its
// message is err's.
func Permanent(err error) error { return permanent{err} }

type permanent struct{ error }

func (p permanent) Unwrap() error        { return p.error }
func (p permanent) Is(target error) bool { return target == ErrPermanent }
