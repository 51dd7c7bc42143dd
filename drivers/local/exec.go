package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/imgbuild/imgbuild/engine"
)

// killGrace is how long a cancelled command's process group has between
// SIGTERM and SIGKILL.
const killGrace = 3 * time.Second

// RunShell runs cmd.Command with /bin/sh -c on this machine, in dir, with
// env (KEY=VALUE entries) added to this process's environment. The command
// runs in a process group of its own: cancelling ctx sends SIGTERM to the
// whole group, then SIGKILL to whatever is left of it a few seconds later, so
// that background children die with it. It returns the exit status (128+n
// when killed by signal n) and an error only when the command could not be
// run or was cancelled. Processes a command leaves running in the
// background after a normal exit are left alone; their hold on the output
// pipes is cut a few seconds after the command exits.
func RunShell(ctx context.Context, dir string, env []string, cmd *engine.Command) (int, error) {
	status, _, err := runShell(ctx, dir, env, cmd)
	return status, err
}

// runShell is RunShell that also returns the process group id when the
// group still has members after the command ended (0 otherwise), so that a
// Comm can kill leftovers when provisioning ends.
func runShell(ctx context.Context, dir string, env []string, cmd *engine.Command) (status, leftGroup int, err error) {
	if err := ctx.Err(); err != nil {
		return -1, 0, fmt.Errorf("not running %q: %w", cmd.Command, context.Cause(ctx))
	}
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd.Command)
	c.Dir = dir
	c.Env = append(os.Environ(), env...)
	c.Stdin, c.Stdout, c.Stderr = cmd.Stdin, cmd.Stdout, cmd.Stderr
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var cancelled atomic.Bool
	c.Cancel = func() error {
		cancelled.Store(true)
		// The group's id is the shell's pid (Setpgid with Pgid 0).
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		return nil
	}
	c.WaitDelay = killGrace
	if err := c.Start(); err != nil {
		return -1, 0, fmt.Errorf("starting /bin/sh in %s: %w", dir, err)
	}
	pgid := c.Process.Pid
	werr := c.Wait()
	if cancelled.Load() {
		// Whatever of the group survived SIGTERM goes now.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return -1, 0, fmt.Errorf("command cancelled: %w", context.Cause(ctx))
	}
	if groupAlive(pgid) {
		leftGroup = pgid
	}
	var exitErr *exec.ExitError
	switch {
	case werr == nil, errors.Is(werr, exec.ErrWaitDelay):
	case errors.As(werr, &exitErr):
	default:
		return -1, leftGroup, fmt.Errorf("running /bin/sh in %s: %w", dir, werr)
	}
	ws, ok := c.ProcessState.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return 128 + int(ws.Signal()), leftGroup, nil
	}
	return c.ProcessState.ExitCode(), leftGroup, nil
}

// groupAlive reports whether process group pgid still has members.
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// killGroup kills what is left of a process group.
func killGroup(pgid int) {
	if pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}
