package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// startPiped starts the imgbuild binary with its standard output on a real
// pipe, reads the first line from it and closes the pipe, as
// imgbuild run x.star | head -1 does.
func startPiped(t *testing.T, dir string, args ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Stdout = w
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	w.Close()
	if _, err := bufio.NewReader(r).ReadString('\n'); err != nil {
		t.Fatalf("reading the first line: %v", err)
	}
	r.Close() // the reader is gone: the next writes get EPIPE
	return cmd, stderr
}

func exitStatus(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatal(err)
	}
	if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

// TestAClosedStdoutDoesNotStopTheRunBeforeItCleansUp closes the reading
// end of imgbuild's standard output while a build prints: the build goes
// on to its end, the scratch directory is removed, the exit code is the
// usual 0, and stderr says the output was dropped. (It was killed by
// SIGPIPE, exit 141, leaving its scratch directory.)
func TestAClosedStdoutDoesNotStopTheRunBeforeItCleansUp(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
local(name = "chatty", provisioners = [shell(inline = ["for i in $(seq 40); do echo line $i; sleep 0.05; done"])])
`})
	cmd, stderr := startPiped(t, dir, "run", "images.star", "--no-color")
	if code := exitStatus(t, cmd.Wait()); code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, stderr)
	}
	if !strings.Contains(stderr.String(), "warning: could not write to standard output") || !strings.Contains(stderr.String(), "broken pipe") {
		t.Errorf("stderr does not say the output was dropped:\n%s", stderr)
	}
	if left := entries(filepath.Join(dir, ".imgbuild", "tmp")); len(left) != 0 {
		t.Errorf("scratch directories left: %v", left)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, ".imgbuild", "logs", "*", "chatty.log"))
	if len(logs) != 1 {
		t.Fatalf("log files: %v", logs)
	}
	if b, _ := os.ReadFile(logs[0]); !strings.Contains(string(b), "line 40") {
		t.Errorf("the log lacks the build's last line:\n%s", b)
	}
}

// TestCtrlCWithStdoutClosedCleansUpAndExits130 is imgbuild run | tee log
// and then Ctrl-C: tee is gone, then imgbuild gets SIGINT; it cancels,
// cleans up and exits 130.
func TestCtrlCWithStdoutClosedCleansUpAndExits130(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
local(name = "slow", provisioners = [shell(inline = ["echo started", "sleep 300"])])
`})
	cmd, stderr := startPiped(t, dir, "run", "images.star", "--no-color")
	cmd.Process.Signal(syscall.SIGINT)
	if code := exitStatus(t, cmd.Wait()); code != 130 {
		t.Fatalf("exit %d, want 130\n%s", code, stderr)
	}
	if left := entries(filepath.Join(dir, ".imgbuild", "tmp")); len(left) != 0 {
		t.Errorf("scratch directories left: %v", left)
	}
	if left := entries(filepath.Join(dir, ".imgbuild", "journal")); len(left) != 0 {
		t.Errorf("the journal says the run left something: %v", left)
	}
}
