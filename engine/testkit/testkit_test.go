package testkit_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// childEnv names the case TestChild plays when this binary runs as a child.
const childEnv = "TESTKIT_CHILD"

// TestChild is what the tests below run in a child process, to see a
// helper skip, fail or stop a test: the case is named by $TESTKIT_CHILD.
func TestChild(t *testing.T) {
	switch testkit.ChildEnv(t, childEnv, "the other tests of this package") {
	case "missing-tool":
		testkit.RequireProgram(t, "imgbuild-no-such-tool", "no-such-package")
	case "opt-in":
		testkit.OptIn(t, "TESTKIT_OPT_IN", "a benchmark")
	case "eventually":
		testkit.EventuallyWithin(t, 30*time.Millisecond, "pigs to fly", func() bool { return false })
	case "uid":
		os.Stdout.WriteString("UID " + strconv.Itoa(os.Getuid()) + "\n")
	}
	t.Log("REACHED: the test went on")
}

// runChild runs TestChild as the case named with env added and returns its
// output and whether it passed.
func runChild(t *testing.T, name string, env ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.v")
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=" + name}, env...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

func TestSkipSkipsOnADevelopersMachine(t *testing.T) {
	out, ok := runChild(t, "missing-tool", "IMGBUILD_INTEGRATION=")
	if !ok || !strings.Contains(out, "--- SKIP") {
		t.Fatalf("want a skip:\n%s", out)
	}
	want := "imgbuild-no-such-tool is not installed: apt-get install no-such-package (IMGBUILD_INTEGRATION=1 makes this a failure)"
	if !strings.Contains(out, want) || strings.Contains(out, "REACHED") {
		t.Errorf("output:\n%s\nwant %q and the test stopped", out, want)
	}
}

func TestSkipFailsUnderIntegration(t *testing.T) {
	out, ok := runChild(t, "missing-tool", "IMGBUILD_INTEGRATION=1")
	if ok || !strings.Contains(out, "--- FAIL") {
		t.Fatalf("want a failure:\n%s", out)
	}
	want := "imgbuild-no-such-tool is not installed: apt-get install no-such-package (IMGBUILD_INTEGRATION=1: a missing counterpart fails the test)"
	if !strings.Contains(out, want) || strings.Contains(out, "REACHED") {
		t.Errorf("output:\n%s\nwant %q and the test stopped", out, want)
	}
}

func TestRequireProgramReturnsThePath(t *testing.T) {
	if p := testkit.RequireProgram(t, "sh", "dash"); !filepath.IsAbs(p) {
		t.Errorf("RequireProgram(sh) = %q, want an absolute path", p)
	}
}

func TestOptInSkipsEvenUnderIntegration(t *testing.T) {
	out, ok := runChild(t, "opt-in", "IMGBUILD_INTEGRATION=1")
	if !ok || !strings.Contains(out, "a benchmark: set TESTKIT_OPT_IN=1 to run it") {
		t.Errorf("want a skip:\n%s", out)
	}
	out, ok = runChild(t, "opt-in", "TESTKIT_OPT_IN=1")
	if !ok || !strings.Contains(out, "REACHED") {
		t.Errorf("want the test to run:\n%s", out)
	}
}

func TestRecorderKeepsEventsInOrderAcrossGoroutines(t *testing.T) {
	ui, rec := testkit.NewUI("web", "local")
	var seen []string
	rec.OnEvent(func(e event.Event) {
		if e.Type == event.StepStarted {
			seen = append(seen, e.Step+" with "+strings.Join(rec.Steps("web"), ","))
		}
	})
	ui.Emit(event.Event{Type: event.StepStarted, Step: "launch"})
	ui.Say("hello %s", "there")
	w := ui.Lines("stdout")
	w.Write([]byte("one\ntwo\n"))
	ui.Emit(event.Event{Type: event.StepFinished, Step: "launch", Elapsed: 1234 * time.Millisecond})
	ui.Emit(event.Event{Type: event.StepStarted, Step: "connect"})
	other := rec.UI("db", "null")
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() { defer wg.Done(); other.Warn("careful") }()
	}
	wg.Wait()

	if got := strings.Join(rec.Steps("web"), ","); got != "launch,connect" {
		t.Errorf("Steps(web) = %s", got)
	}
	if got := len(rec.Steps("")); got != 2 {
		t.Errorf("Steps() has %d steps, want 2", got)
	}
	if got := strings.Join(seen, "; "); got != "launch with launch; connect with launch,connect" {
		t.Errorf("OnEvent saw %s (it must see each event after it is recorded)", got)
	}
	if got := strings.Join(rec.StepTimes(), ","); got != "web: launch 1.2s" {
		t.Errorf("StepTimes() = %s", got)
	}
	if got := strings.Join(rec.Lines("stdout"), ","); got != "one,two" {
		t.Errorf("Lines(stdout) = %s", got)
	}
	if got := len(rec.Messages(event.Warning)); got != 10 {
		t.Errorf("%d warnings, want 10", got)
	}
	if got := rec.Messages(event.Message); len(got) != 1 || got[0] != "hello there" {
		t.Errorf("Messages(Message) = %q", got)
	}
	if !strings.Contains(rec.Log(), "message web [] hello there\n") {
		t.Errorf("Log:\n%s", rec.Log())
	}
	if !strings.Contains(rec.JSON(), `"type":"output","build":"web","driver":"local","stream":"stdout","message":"two"`) {
		t.Errorf("JSON:\n%s", rec.JSON())
	}
}

func TestWorkspaceWritesNestedFiles(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": "x = 1\n", "lib/a/b.star": "y = 2\n"})
	for name, want := range map[string]string{"images.star": "x = 1\n", "lib/a/b.star": "y = 2\n"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v", name, b, err)
		}
	}
}

func TestRunAsNobodyDropsRoot(t *testing.T) {
	out := testkit.RunAsNobody(t, "^TestChild$", childEnv+"=uid")
	if !strings.Contains(out, "UID 65534\n") {
		t.Errorf("as nobody:\n%s", out)
	}
}

func TestEventuallyWaitsForTheCondition(t *testing.T) {
	done := make(chan struct{})
	go func() {
		<-time.After(20 * time.Millisecond)
		close(done)
	}()
	testkit.Eventually(t, "the goroutine to finish", func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
}

func TestEventuallySaysWhatItWaitedFor(t *testing.T) {
	out, ok := runChild(t, "eventually")
	if ok || !strings.Contains(out, "waited 30ms for pigs to fly") || strings.Contains(out, "REACHED") {
		t.Errorf("want a failure naming the condition:\n%s", out)
	}
}

func TestReceiveReturnsTheValueOrTheClose(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if v := testkit.Receive(t, ch, "a number"); v != 7 {
		t.Errorf("Receive = %d", v)
	}
	done := make(chan struct{})
	close(done)
	testkit.Receive(t, done, "the close")
}

func TestBufferTakesWhatWasWrittenWhileOthersWrite(t *testing.T) {
	var b testkit.Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				b.Write([]byte("x"))
			}
		}()
	}
	n := len(b.Take())
	wg.Wait()
	if n += len(b.String()); n != 400 {
		t.Errorf("%d bytes seen, want 400", n)
	}
}

func TestDescendantsListsTheWholeTreeBelowAProcess(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 60 & sh -c 'sleep 60 & wait' & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var kids []int
	// Two sleeps and the shell between: three processes below the outer sh.
	testkit.Eventually(t, "the tree of three processes to start", func() bool {
		kids = testkit.Descendants(cmd.Process.Pid)
		return len(kids) == 3
	})
	for _, pid := range kids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if got := testkit.Descendants(0); got != nil {
		t.Errorf("Descendants(0) = %v, want none", got)
	}
}

func TestWaitForPIDFileAndWaitGoneFollowAShellsChild(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	cmd := exec.Command("sh", "-c", `sleep 60 & echo $! > "$0"; wait`, pidFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := testkit.WaitForPIDFile(t, pidFile)
	if !testkit.Alive(pid) {
		t.Fatalf("the child %d is not alive", pid)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	// Killed, it is a zombie until the shell reaps it: gone all the same.
	testkit.WaitGone(t, pid, "the killed child")
	if testkit.Alive(0) {
		t.Error("Alive(0)")
	}
}
