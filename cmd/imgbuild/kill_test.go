package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/journal"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// jsonRun is imgbuild run --json started as a real process, its events
// read as they come.
type jsonRun struct {
	cmd    *exec.Cmd
	events chan event.Event
	stderr *strings.Builder
}

// startJSON starts prog (the imgbuild binary) with args, which should
// hold --json, in dir.
func startJSON(t *testing.T, dir string, prog string, args ...string) *jsonRun {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Dir = dir
	return startEvents(t, cmd)
}

// startEvents starts cmd, an imgbuild run --json, reading its events.
func startEvents(t *testing.T, cmd *exec.Cmd) *jsonRun {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &jsonRun{cmd: cmd, events: make(chan event.Event, 1024), stderr: &strings.Builder{}}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	go func() {
		defer close(r.events)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var e event.Event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				r.events <- e
			}
		}
		io.Copy(io.Discard, out)
	}()
	return r
}

// waitFor waits for the first event ok accepts, failing the test if the
// run ends or five minutes go by first (a loaded machine boots QEMU
// slowly).
func (r *jsonRun) waitFor(t *testing.T, what string, ok func(event.Event) bool) event.Event {
	t.Helper()
	timeout := time.After(5 * time.Minute)
	for {
		select {
		case e, open := <-r.events:
			if !open {
				t.Fatalf("the run ended before %s; stderr:\n%s", what, r.stderr)
			}
			if ok(e) {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s within five minutes; stderr:\n%s", what, r.stderr)
		}
	}
}

// kill kills the run with SIGKILL and waits for it to be gone.
func (r *jsonRun) kill(t *testing.T) {
	t.Helper()
	r.cmd.Process.Signal(syscall.SIGKILL)
	err := r.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("imgbuild did not die by SIGKILL: %v", err)
	}
}

// processesOf lists the live processes whose environment marks them as
// the run's, as the processes reaper finds them.
func processesOf(t *testing.T, run string) []string {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, d := range ents {
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if kv == journal.EnvVar+"="+run {
				out = append(out, d.Name())
			}
		}
	}
	return out
}

func entries(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestAKilledRunLeavesNothingOnceCleanedUp kills imgbuild with SIGKILL
// while a local() build's provisioner runs (with a child in the
// background), then runs imgbuild cleanup: the scratch directory, the
// provisioner's process group and the journal are gone. A second killed
// run is cleaned up by the next run instead.
func TestAKilledRunLeavesNothingOnceCleanedUp(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
local(name = "slow", provisioners = [shell(inline = ["sleep 300 & echo started; wait"])])
`})
	kill := func() string {
		r := startJSON(t, dir, binary, "run", "images.star", "--json")
		r.waitFor(t, "the provisioner's output", func(e event.Event) bool { return e.Type == event.Output && e.Message == "started" })
		r.kill(t)
		ids := entries(filepath.Join(dir, ".imgbuild", "journal"))
		if len(ids) != 2 {
			t.Fatalf("journal directory: %v, want one run's journal and lock", ids)
		}
		run := strings.TrimSuffix(ids[0], filepath.Ext(ids[0]))
		if n := len(processesOf(t, run)); n < 2 {
			t.Fatalf("%d of the run's processes alive after the kill, want the shell and its sleep at least", n)
		}
		if n := len(entries(filepath.Join(dir, ".imgbuild", "tmp"))); n != 1 {
			t.Fatalf("%d scratch directories after the kill, want 1", n)
		}
		return run
	}
	check := func(run string) {
		t.Helper()
		if p := processesOf(t, run); len(p) != 0 {
			t.Errorf("processes of the killed run still alive: %v", p)
		}
		if left := entries(filepath.Join(dir, ".imgbuild", "tmp")); len(left) != 0 {
			t.Errorf("scratch directories left: %v", left)
		}
		if left := entries(filepath.Join(dir, ".imgbuild", "journal")); len(left) != 0 {
			t.Errorf("journal left: %v", left)
		}
	}

	run := kill()
	code, out, errOut := imgbuild(t, dir, "cleanup", "--dry-run")
	if code != 0 || !strings.Contains(out, "run "+run+" left:") || !strings.Contains(out, "slow: scratch directory .imgbuild/tmp/imgbuild-slow-") || !strings.Contains(out, "(sleep): would be removed") {
		t.Errorf("cleanup --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = imgbuild(t, dir, "cleanup")
	if code != 0 || !strings.Contains(out, ": removed") {
		t.Errorf("cleanup: exit %d\n%s%s", code, out, errOut)
	}
	check(run)
	if code, out, _ := imgbuild(t, dir, "cleanup"); code != 0 || out != "nothing is left by runs that died\n" {
		t.Errorf("a second cleanup: exit %d %q", code, out)
	}

	// The next run removes what a killed one left before it builds.
	run = kill()
	os.WriteFile(filepath.Join(dir, "quick.star"), []byte(`local(name = "quick")`), 0o644)
	code, out, errOut = imgbuild(t, dir, "run", "quick.star", "--no-color")
	if code != 0 || !strings.Contains(out, "cleanup: run "+run+" left:") {
		t.Errorf("the next run did not say it cleaned up: exit %d\n%s%s", code, out, errOut)
	}
	check(run)
}
