package ssh_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// newUI returns a UI of build "b" and the recorder of its events.
func newUI() (*event.UI, *testkit.Recorder) { return testkit.NewUI("b", "null") }

// connect connects with cfg and closes the communicator at the end.
func connect(t *testing.T, cfg ssh.Config) *ssh.Communicator {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ssh.Connect(ctx, cfg)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dial connects to srv with its default options.
func dial(t *testing.T, srv *sshtest.Server) *ssh.Communicator {
	t.Helper()
	return connect(t, ssh.Config{Options: srv.Options()})
}

// run runs command and returns its stdout, stderr and exit status; an error
// fails the test.
func run(t *testing.T, c engine.Communicator, command string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	status, err := c.Run(ctx, &engine.Command{Command: command, Stdout: &out, Stderr: &errb})
	if err != nil {
		t.Fatalf("Run(%q): %v (stderr %q)", command, err, errb.String())
	}
	return out.String(), errb.String(), status
}

// output runs command, which must succeed, and returns its trimmed stdout.
func output(t *testing.T, c engine.Communicator, command string) string {
	t.Helper()
	out, errs, status := run(t, c, command)
	if status != 0 {
		t.Fatalf("Run(%q): exit %d, stderr %q", command, status, errs)
	}
	return strings.TrimSpace(out)
}

// mustContain fails unless msg holds every part.
func mustContain(t *testing.T, msg string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("message lacks %q:\n%s", p, msg)
		}
	}
}
