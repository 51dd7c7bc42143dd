package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// terminal is the real imgbuild binary running on a pseudo-terminal, as a
// person at a terminal runs it.
type terminal struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	out  strings.Builder
	more chan struct{}
	done chan error
}

func startTerminal(t *testing.T, dir string, args ...string) *terminal {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	tm := &terminal{t: t, cmd: cmd, tty: tty, more: make(chan struct{}, 1), done: make(chan error, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			tm.mu.Lock()
			tm.out.Write(buf[:n])
			tm.mu.Unlock()
			select {
			case tm.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { tm.done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); tty.Close() })
	return tm
}

func (tm *terminal) text() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.out.String()
}

// waitFor waits until the screen has shown want n times in all.
func (tm *terminal) waitFor(want string, n int) {
	tm.t.Helper()
	deadline := time.After(60 * time.Second)
	for strings.Count(tm.text(), want) < n {
		select {
		case <-tm.more:
		case <-deadline:
			tm.t.Fatalf("the terminal never showed %q (%d times):\n%s", want, n, tm.text())
		}
	}
}

func (tm *terminal) answer(s string) { tm.tty.Write([]byte(s + "\r")) }

// exit waits for imgbuild to end and returns its exit code.
func (tm *terminal) exit() int {
	tm.t.Helper()
	select {
	case err := <-tm.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			tm.t.Fatal(err)
		}
		return 0
	case <-time.After(60 * time.Second):
		tm.t.Fatalf("imgbuild did not exit:\n%s", tm.text())
	}
	return -1
}

const flaky = `
local(name = "web", provisioners = [shell(inline = ["test -e %s || { echo not yet >&2; exit 4; }"])])
`

func TestOnErrorAskRetriesTheFailedStep(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ready")
	dir := testkit.Workspace(t, map[string]string{"images.star": strings.Replace(flaky, "%s", marker, 1)})
	tm := startTerminal(t, dir, "run", "images.star", "--on-error", "ask")
	tm.waitFor("[c]lean up, [a]bort (keep everything), or [r]etry the step? ", 1)
	if !strings.Contains(tm.text(), `web: step "provision" failed:`) || !strings.Contains(tm.text(), "exited with status 4") {
		t.Errorf("the question does not say what failed:\n%s", tm.text())
	}
	os.WriteFile(marker, nil, 0o644)
	tm.answer("r")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit %d after a retry that succeeds:\n%s", code, tm.text())
	}
	tm.waitFor("1 build: 1 succeeded", 1)
	if !strings.Contains(tm.text(), "retrying provision") {
		t.Errorf("no retry:\n%s", tm.text())
	}
}

func TestOnErrorAskAbortKeepsAndCleanUpRemoves(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": strings.Replace(flaky, "%s", "/nonexistent", 1)})
	tm := startTerminal(t, dir, "run", "images.star", "--on-error", "ask")
	tm.waitFor("or [r]etry the step? ", 1)
	tm.answer("x")
	tm.waitFor("answer c, a or r", 1)
	tm.answer("a")
	if code := tm.exit(); code != 1 {
		t.Fatalf("exit %d:\n%s", code, tm.text())
	}
	tm.waitFor("1 build: 1 failed", 1)
	if !strings.Contains(tm.text(), "web: kept for debugging") || !strings.Contains(tm.text(), "kept for debugging (--on-error=abort)") {
		t.Errorf("abort did not keep:\n%s", tm.text())
	}
	if kept, _ := filepath.Glob(filepath.Join(dir, ".imgbuild/tmp/imgbuild-web-*/local-root-*")); len(kept) != 1 {
		t.Errorf("abort did not keep the build's tree: %v", kept)
	}
	os.RemoveAll(filepath.Join(dir, ".imgbuild/tmp"))

	tm = startTerminal(t, dir, "run", "images.star", "--on-error", "ask")
	tm.waitFor("or [r]etry the step? ", 1)
	tm.answer("c")
	if code := tm.exit(); code != 1 {
		t.Fatalf("exit %d:\n%s", code, tm.text())
	}
	if left, _ := os.ReadDir(filepath.Join(dir, ".imgbuild/tmp")); len(left) != 0 {
		t.Errorf("clean up left %v", left)
	}
}

func TestOnErrorAskAndDebugNeedATerminal(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `local(name = "a")`})
	for _, args := range [][]string{{"--on-error", "ask"}, {"--debug"}} {
		cmd := exec.Command(binary, append([]string{"run", "images.star"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "asks questions on a terminal, and standard input is not one") {
			t.Errorf("%v without a terminal: %v\n%s", args, err, out)
		}
	}
}

func TestDebugPausesBeforeEachStepAndSaysHowToReachTheMachine(t *testing.T) {
	srv := sshtest.Start(t)
	dir := testkit.Workspace(t, map[string]string{"images.star": `
null(name = "host", ssh_host = "127.0.0.1", ssh_port = ` + itoa(srv.Port) + `, ssh_username = "` + srv.User + `",
     ssh_private_key_file = "` + srv.ClientKeyFile + `", ssh_host_key = "` + srv.HostKeyFingerprint + `",
     provisioners = [shell(inline = ["echo provisioned"])])
`})
	tm := startTerminal(t, dir, "run", "images.star", "--debug")
	steps := 0
	for {
		tm.waitFor("press Enter to run it, or type a to abort the build: ", steps+1)
		steps++
		if strings.Contains(tm.text(), "host: next step: provision") {
			break
		}
		tm.answer("")
	}
	want := "the machine: ssh -i " + srv.ClientKeyFile + " -o IdentitiesOnly=yes -p " + itoa(srv.Port)
	if !strings.Contains(tm.text(), want) {
		t.Errorf("no ssh command line before provision (%q):\n%s", want, tm.text())
	}
	tm.answer("")
	if code := tm.exit(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, tm.text())
	}
	tm.waitFor("1 build: 1 succeeded", 1)
	if steps < 2 || !strings.Contains(tm.text(), "provisioned") {
		t.Errorf("%d pauses:\n%s", steps, tm.text())
	}
}

// TestDebugKeyFileIsPrivateLogsInAndIsRemoved: a build's own key (made by
// the builders that launch machines) is written 0600 for --debug, the ssh
// command line logs in with it, and closing removes it.
func TestDebugKeyFileIsPrivateLogsInAndIsRemoved(t *testing.T) {
	srv := sshtest.Start(t)
	key, err := ssh.NewKey("imgbuild-web")
	if err != nil {
		t.Fatal(err)
	}
	srv.AddAuthorizedKey(t, key.AuthorizedKey())
	ui := event.NewUI(event.NewBus(), "web", "qemu")
	ui.SetAccess(&event.Access{User: srv.User, Host: srv.Host, Port: srv.Port, Key: key.PEM()})
	a := &asker{kept: map[string]string{}}
	line := a.reach(ui, false)
	fields := strings.Fields(line)
	if len(fields) < 3 || fields[1] != "-i" {
		t.Fatalf("ssh command line %q", line)
	}
	st, err := os.Stat(fields[2])
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, st.Mode())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", line+" -o BatchMode=yes echo logged in").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "logged in") {
		t.Errorf("%s: %v\n%s", line, err, out)
	}
	a.close()
	if _, err := os.Stat(fields[2]); err == nil {
		t.Error("the key file outlived the run")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
