package chroot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/imgbuild/imgbuild/engine/panics"
)

// Bind is a directory of this machine that commands see inside the tree.
type Bind struct {
	// Source is the directory on this machine (absolute).
	Source string `json:"source"`
	// Target is where it appears inside the tree ("/var/cache/apt/archives");
	// it is made if missing.
	Target string `json:"target"`
	// ReadOnly mounts it read-only.
	ReadOnly bool `json:"read_only,omitempty"`
}

// killGrace is how long a cancelled command's namespace has between SIGTERM
// and SIGKILL.
const killGrace = 3 * time.Second

// NeedRoot returns an error saying that what needs root, and how to get
// it, unless this process runs as root.
func NeedRoot(what string) error {
	if os.Geteuid() == 0 {
		return nil
	}
	return fmt.Errorf("%s needs root (it mounts file systems and changes root in private namespaces), but imgbuild runs as uid %d: run it as root, for example with sudo", what, os.Geteuid())
}

// RunIsolated runs argv on this machine in a private mount namespace, with a
// /proc of its own, and a PID namespace: the mounts it makes (debootstrap
// mounts /proc and /sys inside its target) and the processes it starts end
// with it, even if it is killed or imgbuild dies. argv[0] is looked up in
// env's PATH. It returns the exit status (128+n when killed by signal n);
// err is for failing to run it or a cancellation, never a non-zero exit.
func RunIsolated(ctx context.Context, argv, env []string, dir string, stdout, stderr io.Writer) (int, error) {
	if len(argv) == 0 {
		return -1, errors.New("chroot: RunIsolated needs a command")
	}
	if dir == "" {
		dir = "/"
	}
	return run(ctx, &spec{Dir: dir, Env: env, Argv: argv, Grace: killGrace}, nil, stdout, stderr)
}

// run starts the helper in fresh namespaces, hands it sp, and waits for the
// command's outcome. Cancelling ctx sends the helper SIGTERM, which it
// passes to every process of the namespace; SIGKILL follows after the
// grace period.
func run(ctx context.Context, sp *spec, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if err := ctx.Err(); err != nil {
		return -1, fmt.Errorf("not running %s: %w", describe(sp), context.Cause(ctx))
	}
	if err := supported(); err != nil {
		return -1, err
	}
	if err := NeedRoot("the chroot communicator"); err != nil {
		return -1, err
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		specR.Close()
		specW.Close()
		return -1, err
	}
	defer outR.Close()
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{helperArg0},
		Env:         os.Environ(),
		Stdin:       stdin,
		Stdout:      stdout,
		Stderr:      stderr,
		ExtraFiles:  []*os.File{specR, outW},
		SysProcAttr: namespaces(),
	}
	var cancelled atomic.Bool
	stopped := make(chan struct{})
	defer close(stopped)
	err = cmd.Start()
	specR.Close()
	outW.Close()
	if err != nil {
		specW.Close()
		return -1, fmt.Errorf("starting the chroot helper for %s: %w", describe(sp), err)
	}
	panics.Go(ctx, func() {
		select {
		case <-ctx.Done():
			cancelled.Store(true)
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-time.After(sp.Grace + 2*time.Second):
				_ = cmd.Process.Kill()
			case <-stopped:
			}
		case <-stopped:
		}
	})
	enc := json.NewEncoder(specW)
	werr := enc.Encode(sp)
	specW.Close()
	if werr != nil {
		_ = cmd.Process.Kill()
	}
	outcomeData := make(chan []byte, 1)
	panics.Go(ctx, func() {
		b, _ := io.ReadAll(outR)
		outcomeData <- b
	})
	waitErr := cmd.Wait()
	data := <-outcomeData
	if cancelled.Load() {
		return -1, fmt.Errorf("command cancelled: %w", context.Cause(ctx))
	}
	var o outcome
	if err := json.Unmarshal(bytes.TrimSpace(data), &o); err != nil {
		return -1, fmt.Errorf("the chroot helper running %s ended without saying how the command went (%v)", describe(sp), waitErr)
	}
	if o.Error != "" {
		return -1, errors.New(o.Error)
	}
	return o.Status, nil
}

// describe names what sp runs, for messages.
func describe(sp *spec) string {
	name := strings.Join(sp.Argv, " ")
	if len(name) > 60 {
		name = name[:60] + "…"
	}
	if sp.Root != "" {
		return fmt.Sprintf("%q in %s", name, sp.Root)
	}
	return fmt.Sprintf("%q", name)
}
