package qemu

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/imgbuild/imgbuild/drivers/qemu/vm"
	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine"

	"github.com/imgbuild/imgbuild/engine/panics"
)

// connection is the build's SSH connection to the machine: wait for SSH
// makes it; provision, read kernel and shut down use it; it is closed by
// shut down, by the machine's exit (see guard) or by a cleanup, whichever
// comes first. The machine's exit closes it from another goroutine, hence
// the lock.
type connection struct {
	mu   sync.Mutex
	comm *ssh.Communicator
}

func (c *connection) set(comm *ssh.Communicator) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.comm = comm
}

// get returns the connection, or nil once it is closed.
func (c *connection) get() *ssh.Communicator {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.comm
}

// Communicator implements engine.Connection: the connection, nil once it
// is closed.
func (c *connection) Communicator() engine.Communicator {
	if comm := c.get(); comm != nil {
		return comm
	}
	return nil
}

func (c *connection) close() {
	c.mu.Lock()
	comm := c.comm
	c.comm = nil
	c.mu.Unlock()
	if comm != nil {
		comm.Close()
	}
}

// guard returns a context that is cancelled, with the reason, when the
// machine stops by itself, and closes the SSH connection then, so that
// nothing waits on a machine that is gone.
func guard(ctx context.Context, m *vm.Machine, conn *connection) (context.Context, func()) {
	gctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	panics.Go(ctx, func() {
		select {
		case <-m.Exited():
			cancel(deathError(m))
			conn.close()
		case <-done:
		}
	})
	return gctx, func() {
		close(done)
		cancel(nil)
	}
}

// errMachineStopped marks the error of a machine that stopped by itself.
var errMachineStopped = errors.New("the machine stopped")

func deathError(m *vm.Machine) error {
	return fmt.Errorf("%w: qemu %s; the last lines of the serial console:\n%s", errMachineStopped, m.ExitStatus(), indent(m.ConsoleTail(consoleLines)))
}

func indent(s string) string {
	if s == "" {
		return "  (nothing: add console=ttyS0 to append to see the kernel's messages)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// causeOf returns the machine's death when that is why ctx ended, else
// err.
func causeOf(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && errors.Is(cause, errMachineStopped) {
		return cause
	}
	return err
}

// explain returns the machine's death when that is why a step failed.
// A lost connection may be noticed before QEMU's exit is: it waits a
// moment for the exit then.
func explain(ctx context.Context, m *vm.Machine, err error) error {
	if errors.Is(err, engine.ErrDisconnected) {
		select {
		case <-m.Exited():
		case <-time.After(3 * time.Second):
		}
	}
	if !m.Running() {
		return deathError(m)
	}
	return causeOf(ctx, err)
}
