package awstest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// Mode says how Faults breaks the call it is armed for.
type Mode int

const (
	// Fail fails the call before it is sent: the server never sees it.
	Fail Mode = iota
	// LoseAnswer sends the call, lets the server do it, then fails it as
	// if the answer had been lost on the way back.
	LoseAnswer
	// Cancel cancels the build's context as the call starts.
	Cancel
	// CancelAfter lets the server do the call, then cancels the build's
	// context and fails the call with the cancellation.
	CancelAfter
	// PanicAfter lets the server do the call, then panics in the goroutine
	// that made it, as a bug in the driver would.
	PanicAfter
	// KillAfter lets the server do the call, then kills the process with
	// SIGKILL: for a test binary playing imgbuild.
	KillAfter
)

// Modes lists the modes that break a call the way AWS or the user can
// (not PanicAfter nor KillAfter, which stand for a bug and kill -9).
var Modes = []Mode{Fail, LoseAnswer, Cancel, CancelAfter}

// String names the mode as the fault loop reports it.
func (m Mode) String() string {
	switch m {
	case Fail:
		return "fail"
	case LoseAnswer:
		return "lose-answer"
	case Cancel:
		return "cancel"
	case CancelAfter:
		return "cancel-after"
	case PanicAfter:
		return "panic-after"
	case KillAfter:
		return "kill-after"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Faults is a test-only SDK middleware, added through a client's
// APIOptions, that counts every API call (an operation, however many
// times the SDK retries it) and breaks the k-th one as armed. It records
// the calls it saw, in order.
type Faults struct {
	mu       sync.Mutex
	calls    []string
	armed    map[int]Mode
	cancel   context.CancelFunc
	injected []string
}

// Fault is one call to break: the k-th from Arm (1-based), and how.
type Fault struct {
	K    int
	Mode Mode
}

// Arm makes the calls faults name break as they say; cancel is the
// build's cancel function, for the cancelling modes. It clears the calls
// recorded so far.
func (f *Faults) Arm(cancel context.CancelFunc, faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.armed, f.cancel, f.injected = nil, map[int]Mode{}, cancel, nil
	for _, x := range faults {
		f.armed[x.K] = x.Mode
	}
}

// Reset disarms f and clears the calls recorded.
func (f *Faults) Reset() { f.Arm(nil) }

// Calls lists the calls seen since Arm or Reset: "EC2.RunInstances
// eu-west-1".
func (f *Faults) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Injected names the calls that were broken.
func (f *Faults) Injected() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.injected...)
}

// Middleware returns the middleware, for an Options.APIOptions list.
func (f *Faults) Middleware() func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("awstest/faults",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				call := fmt.Sprintf("%s.%s %s", awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx), awsmiddleware.GetRegion(ctx))
				f.mu.Lock()
				f.calls = append(f.calls, call)
				n := len(f.calls)
				mode, hit := f.armed[n]
				cancel := f.cancel
				if hit {
					f.injected = append(f.injected, fmt.Sprintf("call %d (%s): %s", n, call, mode))
				}
				f.mu.Unlock()
				if !hit {
					return next.HandleInitialize(ctx, in)
				}
				injected := &smithy.GenericAPIError{Code: "InjectedFault", Message: fmt.Sprintf("awstest injected a fault into call %d (%s)", n, call), Fault: smithy.FaultServer}
				switch mode {
				case Fail:
					return middleware.InitializeOutput{}, middleware.Metadata{}, injected
				case LoseAnswer:
					_, md, _ := next.HandleInitialize(ctx, in)
					return middleware.InitializeOutput{}, md, injected
				case Cancel:
					if cancel != nil {
						cancel()
					}
					return next.HandleInitialize(ctx, in)
				case PanicAfter:
					next.HandleInitialize(ctx, in)
					panic(fmt.Sprintf("awstest: a panic after call %d (%s)", n, call))
				case KillAfter:
					next.HandleInitialize(ctx, in)
					syscall.Kill(os.Getpid(), syscall.SIGKILL)
					select {} // until the signal lands
				default: // CancelAfter
					out, md, err := next.HandleInitialize(ctx, in)
					if cancel != nil {
						cancel()
					}
					if err == nil && ctx.Err() != nil {
						err = ctx.Err()
					}
					return out, md, err
				}
			}), middleware.After)
	}
}
