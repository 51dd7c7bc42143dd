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

// TestSecretsStayHiddenAcrossTheLineBound writes a secret that straddles
// the 64 KiB bound at which long lines are split, in one write and split
// across two writes: no event may show any part of it.
func TestSecretsStayHiddenAcrossTheLineBound(t *testing.T) {
	const secret = "Zq7-s3cr3t-t0ken"
	line := strings.Repeat("x", maxLine-5) + secret + strings.Repeat("y", 10)
	want := strings.Repeat("x", maxLine-5) + "(sensitive)" + strings.Repeat("y", 10)
	// The first write holds the whole line, then the line up to just past
	// the bound (both split), then up to just before it (one event).
	for _, at := range []int{len(line), maxLine + 3, maxLine - 2} {
		var msgs []string
		bus := NewBus(SinkFunc(func(e Event) { msgs = append(msgs, e.Message) }))
		bus.AddSecret(secret)
		w := NewUI(bus, "web", "local").Lines("stdout")
		w.Write([]byte(line[:at]))
		w.Write([]byte(line[at:] + "\n"))
		w.Close()
		for i, m := range msgs {
			for n := 3; n <= len(secret); n++ {
				if strings.HasSuffix(m, secret[:n]) || strings.HasPrefix(m, secret[len(secret)-n:]) {
					t.Errorf("write split at %d: event %d shows part of the secret: ...%q", at, i, m[max(0, len(m)-20):])
				}
			}
		}
		if got := strings.Join(msgs, ""); got != want {
			t.Errorf("write split at %d: the events do not add up to the redacted line (len %d, want %d)", at, len(got), len(want))
		}
	}
}
