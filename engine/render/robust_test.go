package render

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
)

// TestABoardThatPanicsWhileDrawingStopsAndPrintsPlainLines breaks the
// board's drawing (its terminal size query panics): the panic goes no
// further than the board, later events still print as lines, and Close
// reports it.
func TestABoardThatPanicsWhileDrawingStopsAndPrintsPlainLines(t *testing.T) {
	var out bytes.Buffer
	now := at(1000)
	b := newBoard(&out, false, false, func() time.Time { return now }, func() (int, int) { panic("terminal size bug") })
	b.Handle(event.Event{Time: t0, Type: event.BuildQueued, Build: "web", Driver: "local"})
	b.mu.Lock()
	b.flush(false)
	b.mu.Unlock()
	b.Handle(event.Event{Time: t0, Type: event.Message, Build: "web", Message: "still reported"})
	err := b.Close()
	if err == nil || !strings.Contains(err.Error(), "the live board stopped: panic: terminal size bug") {
		t.Errorf("Close() = %v", err)
	}
	if !strings.Contains(out.String(), "still reported") {
		t.Errorf("later events were not printed:\n%s", out.String())
	}
}

// TestLogsOpenABuildsFileOnlyWhileItRuns queues many builds, then runs
// them one at a time: no more than run.log and the running build's file
// are ever open, and each file still starts with the build's queued line.
func TestLogsOpenABuildsFileOnlyWhileItRuns(t *testing.T) {
	dir := t.TempDir()
	l := NewLogs(dir)
	const n = 500
	name := func(i int) string { return "b" + strconv.Itoa(i) }
	l.Handle(event.Event{Time: t0, Type: event.RunStarted})
	for i := range n {
		l.Handle(event.Event{Time: t0, Type: event.BuildQueued, Build: name(i), Driver: "local"})
	}
	if len(l.files) > 1 {
		t.Fatalf("%d files open with every build queued", len(l.files))
	}
	most := 0
	for i := range n - 1 { // the last one never starts: it is cancelled
		for _, typ := range []event.Type{event.BuildStarted, event.StepStarted, event.BuildFinished} {
			l.Handle(event.Event{Time: t0, Type: typ, Build: name(i), Step: "s", Status: event.Succeeded})
			most = max(most, len(l.files))
		}
	}
	l.Handle(event.Event{Time: t0, Type: event.BuildFinished, Build: name(n - 1), Status: event.Cancelled, Error: "the run was interrupted"})
	l.Handle(event.Event{Time: t0, Type: event.Message, Build: name(0), Message: "after its end"})
	if most > 2 {
		t.Errorf("%d files open at once, want at most run.log and the running build's", most)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, n - 1} {
		b, _ := os.ReadFile(filepath.Join(dir, name(i)+".log"))
		if !strings.HasPrefix(string(b), "2026-03-01T14:05:09.000Z queued (local)\n") {
			t.Errorf("%s.log does not start with its queued line:\n%s", name(i), b)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "b0.log")); !strings.HasSuffix(string(b), "after its end\n") {
		t.Errorf("an event after the build's end was lost:\n%s", b)
	}
}
