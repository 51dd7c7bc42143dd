package event

import (
	"fmt"
	"strings"
	"testing"
)

func TestBusRedactsEveryTextField(t *testing.T) {
	var got []Event
	bus := NewBus(SinkFunc(func(e Event) { got = append(got, e) }))
	bus.AddSecret("tok")
	bus.AddSecret("tok-longer") // a secret containing another goes whole
	items := []string{"key tok-longer"}
	bus.Emit(Event{Type: Message, Message: "use tok-longer and tok", Error: "tok!", Step: "step tok", Items: items})
	e := got[0]
	if e.Message != "use (sensitive) and (sensitive)" || e.Error != "(sensitive)!" || e.Step != "step (sensitive)" || e.Items[0] != "key (sensitive)" {
		t.Errorf("redacted event: %+v", e)
	}
	if items[0] != "key tok-longer" {
		t.Error("the emitter's slice was changed")
	}
}

func TestLinesSplitsOutputIntoEvents(t *testing.T) {
	var lines []string
	ui := NewUI(NewBus(SinkFunc(func(e Event) { lines = append(lines, e.Stream+":"+e.Message) })), "web", "local")
	w := ui.Lines("stderr")
	fmt.Fprint(w, "first\r\nsec")
	fmt.Fprint(w, "ond\n\nlast without newline")
	w.Close()
	if strings.Join(lines, "|") != "stderr:first|stderr:second|stderr:|stderr:last without newline" {
		t.Errorf("lines = %q", lines)
	}
}

func TestVeryLongLinesAreSplitNotHeld(t *testing.T) {
	var n int
	ui := NewUI(NewBus(SinkFunc(func(Event) { n++ })), "web", "local")
	w := ui.Lines("stdout")
	w.Write([]byte(strings.Repeat("x", 3*maxLine)))
	if n < 2 {
		t.Errorf("a line of %d bytes without newline was held whole (%d events)", 3*maxLine, n)
	}
}
