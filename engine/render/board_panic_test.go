package render

import (
	"bytes"
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
