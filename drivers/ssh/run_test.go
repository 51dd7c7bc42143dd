package ssh_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

func TestRunReturnsExitStatusAndSeparatesStdoutFromStderr(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	for _, tc := range []struct {
		command        string
		stdout, stderr string
		status         int
	}{
		{"true", "", "", 0},
		{"echo out; echo err >&2", "out\n", "err\n", 0},
		{"echo partial; exit 3", "partial\n", "", 3},
		{"printf 'no newline'; exit 255", "no newline", "", 255},
		{"echo bye >&2; kill -KILL $$", "", "bye\n", 128 + 9},
		{"no-such-command-imgbuild", "", "no-such-command-imgbuild: command not found\n", 127},
	} {
		out, errs, status := run(t, c, tc.command)
		if status != tc.status || out != tc.stdout || !strings.HasSuffix(errs, tc.stderr) {
			t.Errorf("Run(%q) = exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr ending %q",
				tc.command, status, out, errs, tc.status, tc.stdout, tc.stderr)
		}
	}
}

func TestRunPassesStdin(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	var out bytes.Buffer
	status, err := c.Run(context.Background(), &engine.Command{Command: "tr a-z A-Z", Stdin: strings.NewReader("hello\nworld"), Stdout: &out})
	if err != nil || status != 0 || out.String() != "HELLO\nWORLD" {
		t.Fatalf("Run = %d, %v, %q; want 0, nil, \"HELLO\\nWORLD\"", status, err, out.String())
	}
}

func TestRunPassesHostileEnvironmentValuesExactly(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	values := []string{
		"",
		"plain",
		"it's",
		`"double" and 'single' quotes`,
		"$(touch /tmp/imgbuild-pwned)",
		"`touch /tmp/imgbuild-pwned`",
		"${HOME} $HOME $$ $? $1",
		"line one\nline two\n",
		"\n\nleading newlines",
		"trailing backslash \\",
		`\'\\'\"`,
		"tab\there; semicolon & ampersand | pipe > redirect < * ? [a] ~ #",
		"héllo wörld ✓ 日本語 🚀",
		"-n",
		"%s %d %%",
		"\x01\x02\x1b[31mcontrol\x7f",
		"\xff\xfe not utf-8",
		strings.Repeat("long ' value ", 2000),
	}
	for _, v := range values {
		env, err := shellquote.Env(map[string]string{"A": v})
		if err != nil {
			t.Fatal(err)
		}
		out, errs, status := run(t, c, env+`printf %s "$A"`)
		if status != 0 || out != v {
			t.Errorf("value %q came back as %q (exit %d, stderr %q)", v, out, status, errs)
		}
	}
	if out := output(t, c, "ls /tmp/imgbuild-pwned 2>/dev/null || echo absent"); out != "absent" {
		t.Errorf("a value was executed: /tmp/imgbuild-pwned exists")
	}
}

// hashWriter hashes what is written to it.
type hashWriter struct {
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func (w *hashWriter) Write(b []byte) (int, error) {
	w.n += int64(len(b))
	return w.h.Write(b)
}

func TestRunStreams50MBOfOutputIntact(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	const size = 50 << 20
	// The same stream, made here and there.
	line := "0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\n"
	want := sha256.New()
	for n := 0; n < size; n += len(line) {
		want.Write([]byte(line[:min(len(line), size-n)]))
	}
	got := &hashWriter{h: sha256.New()}
	var errs bytes.Buffer
	status, err := c.Run(context.Background(), &engine.Command{
		Command: fmt.Sprintf("yes '%s' | head -c %d", strings.TrimSuffix(line, "\n"), size),
		Stdout:  got, Stderr: &errs,
	})
	if err != nil || status != 0 {
		t.Fatalf("Run = %d, %v (stderr %q)", status, err, errs.String())
	}
	if got.n != size || !bytes.Equal(got.h.Sum(nil), want.Sum(nil)) {
		t.Fatalf("got %d bytes with a different hash; want %d bytes", got.n, size)
	}
}

func TestRunStreamsOutputLinesAsEventsWhileTheCommandRuns(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	ui, rec := newUI()
	// The command prints its first lines, then waits on a FIFO the test
	// writes only once it has seen the first line as an event: unless the
	// output is streamed, the command never ends.
	fifo := filepath.Join(t.TempDir(), "go-on")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	rec.OnEvent(func(e event.Event) {
		if e.Type == event.Output && e.Message == "first" {
			go func() {
				if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
					f.WriteString("go on\n")
					f.Close()
				}
			}()
		}
	})
	stdout, stderr := ui.Lines("stdout"), ui.Lines("stderr")
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTimeout)
	defer cancel()
	status, err := c.Run(ctx, &engine.Command{
		Command: "echo first; echo oops >&2; read line < " + fifo + "; echo last",
		Stdout:  stdout, Stderr: stderr,
	})
	stdout.Close()
	stderr.Close()
	if ctx.Err() != nil {
		t.Fatalf("the first line never came while the command ran: not streamed (Run = %d, %v)", status, err)
	}
	if err != nil || status != 0 {
		t.Fatalf("Run = %d, %v", status, err)
	}
	var got []string
	for _, e := range rec.Of(event.Output) {
		got = append(got, e.Stream+":"+e.Message)
	}
	if strings.Join(got, ",") != "stdout:first,stderr:oops,stdout:last" && strings.Join(got, ",") != "stderr:oops,stdout:first,stdout:last" {
		t.Fatalf("output events %q", got)
	}
}

func TestCancellingRunKillsTheRemoteProcessGroup(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	pidFile := fmt.Sprintf("/tmp/imgbuild-cancel-%d", time.Now().UnixNano())
	// The background child ignores SIGTERM and neither reads nor writes:
	// only SIGKILL to its process group stops it.
	command := "trap '' TERM; sleep 300 & echo $! > " + pidFile + "; echo started; wait"

	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	w := &signalWriter{match: "started", ch: started}
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, &engine.Command{Command: command, Stdout: w})
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not start")
	}
	pid := output(t, c, "cat "+pidFile)
	if _, err := strconv.Atoi(pid); err != nil {
		t.Fatalf("pid file holds %q", pid)
	}
	cancel()
	cancelled := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run after cancel = %v; want an error wrapping context.Canceled", err)
		}
		mustContain(t, err.Error(), "command cancelled")
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	t.Logf("Run returned %v after cancel", time.Since(cancelled))
	// The communicator is still usable, and the process is gone (or a
	// zombie waiting for init to reap it: dead all the same).
	defer output(t, c, "rm -f "+pidFile)
	testkit.Eventually(t, "remote process "+pid+" to end after cancel", func() bool {
		state := output(t, c, "ps -o stat= -p "+pid+" || true")
		return state == "" || strings.HasPrefix(state, "Z")
	})
}

// signalWriter closes ch when match has been written.
type signalWriter struct {
	buf   bytes.Buffer
	match string
	ch    chan struct{}
}

func (w *signalWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	if w.ch != nil && strings.Contains(w.buf.String(), w.match) {
		close(w.ch)
		w.ch = nil
	}
	return len(b), nil
}

func TestRunOnAnAlreadyCancelledContextRunsNothing(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Run(ctx, &engine.Command{Command: "touch /tmp/imgbuild-never"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v; want context.Canceled", err)
	}
}
