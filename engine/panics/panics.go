// Package panics turns a panic inside a build into that build's failure,
// so that one bug in a step, a provisioner, a post-processor, a driver's
// goroutine or a renderer never kills the process while other builds hold
// cloud resources: the cleanups still run and the other builds go on.
//
// Call runs a function and returns the panic it raised as an *Error, with
// the stack. Go starts a goroutine whose panic fails the build its context
// belongs to: the engine installs that build's Handler in the context it
// gives the driver (WithHandler), and a driver starts every goroutine of its
// own with Go, passing down the context it was given.
//
// The package knows nothing of builds, events or platforms.
package panics

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"sync/atomic"
)

// Error is a recovered panic: the value it was raised with and the stack of
// the goroutine that raised it.
type Error struct {
	Value any
	Stack string

	logged atomic.Bool
}

// FirstLog reports whether this is the first call for e: the stack is
// logged once, however many layers see the error go by.
func (e *Error) FirstLog() bool { return !e.logged.Swap(true) }

// Error says what panicked; the stack is kept apart, for the build's log.
func (e *Error) Error() string {
	return fmt.Sprintf("panic: %v (a bug in imgbuild: the stack is in the build's log; please report it)", e.Value)
}

// Unwrap returns the panic's value when it is an error (a runtime error, a
// panic(err)).
func (e *Error) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// New makes the Error of a value just recovered; call it in the deferred
// function that recovered it, so that the stack is the panicking one.
func New(v any) *Error {
	if e, ok := v.(*Error); ok {
		return e
	}
	return &Error{Value: v, Stack: string(debug.Stack())}
}

// Call runs fn and returns its error, or the panic it raised as an *Error.
func Call(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = New(v)
		}
	}()
	return fn()
}

// Handler receives the panic of a goroutine started with Go.
type Handler func(*Error)

type handlerKey struct{}

// WithHandler returns a context whose goroutines started with Go report
// their panics to h. Contexts derived from it (including
// context.WithoutCancel) keep h.
func WithHandler(ctx context.Context, h Handler) context.Context {
	return context.WithValue(ctx, handlerKey{}, h)
}

// Go runs fn in a new goroutine. A panic in fn is given to the Handler of
// ctx (see WithHandler), which fails the build ctx belongs to; without one
// (a test calling a driver directly), the stack is printed and the panic
// goes on, as it would have without Go.
func Go(ctx context.Context, fn func()) {
	h, _ := ctx.Value(handlerKey{}).(Handler)
	go func() {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			e := New(v)
			if h == nil {
				fmt.Fprintf(os.Stderr, "panic in a goroutine with no build to fail: %v\n%s\n", e.Value, e.Stack)
				panic(e)
			}
			h(e)
		}()
		fn()
	}()
}
