package testkit

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
)

// Recorder is an [event.Sink] that keeps every event it is handed, safe
// for concurrent use. The zero value is ready.
type Recorder struct {
	mu     sync.Mutex
	events []event.Event
	on     func(event.Event)
}

// NewUI returns the UI of build (driver) on a bus that delivers to a new
// Recorder, and that Recorder.
func NewUI(build, driver string) (*event.UI, *Recorder) {
	r := &Recorder{}
	return r.UI(build, driver), r
}

// Bus returns a new bus delivering to r.
func (r *Recorder) Bus() *event.Bus { return event.NewBus(r) }

// UI returns the UI of build (driver) on a new bus delivering to r.
func (r *Recorder) UI(build, driver string) *event.UI {
	return event.NewUI(r.Bus(), build, driver)
}

// OnEvent sets f to be called with each event after it is recorded, from
// the goroutine that emitted it and outside r's lock (f may read r). A
// test uses it to act at a moment of the build: cancel when a step starts.
func (r *Recorder) OnEvent(f func(event.Event)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = f
}

// Handle implements [event.Sink].
func (r *Recorder) Handle(e event.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	on := r.on
	r.mu.Unlock()
	if on != nil {
		on(e)
	}
}

// Events returns a copy of every event so far, in order.
func (r *Recorder) Events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Of returns the events of the given types, in order.
func (r *Recorder) Of(types ...event.Type) []event.Event {
	var out []event.Event
	for _, e := range r.Events() {
		if slices.Contains(types, e.Type) {
			out = append(out, e)
		}
	}
	return out
}

// Steps returns the names of the steps build started, in order; with build
// "", the steps of every build.
func (r *Recorder) Steps(build string) []string {
	var out []string
	for _, e := range r.Of(event.StepStarted) {
		if build == "" || e.Build == build {
			out = append(out, e.Step)
		}
	}
	return out
}

// StepTimes returns how long each finished step took, in the order they
// finished, as "build: step 1.2s": for a test's log.
func (r *Recorder) StepTimes() []string {
	var out []string
	for _, e := range r.Of(event.StepFinished) {
		out = append(out, e.Build+": "+e.Step+" "+e.Elapsed.Round(100*time.Millisecond).String())
	}
	return out
}

// Messages returns the Message of every event of the given types, in order.
func (r *Recorder) Messages(types ...event.Type) []string {
	var out []string
	for _, e := range r.Of(types...) {
		out = append(out, e.Message)
	}
	return out
}

// Lines returns the Output lines of stream ("stdout", "stderr"), in order.
func (r *Recorder) Lines(stream string) []string {
	var out []string
	for _, e := range r.Of(event.Output) {
		if e.Stream == stream {
			out = append(out, e.Message)
		}
	}
	return out
}

// Log renders every event as one line, "type build [step] message", with
// its error and items: for failure messages and for checking what a user
// would read.
func (r *Recorder) Log() string {
	var b strings.Builder
	for _, e := range r.Events() {
		fmt.Fprintf(&b, "%s %s [%s] %s", e.Type, e.Build, e.Step, e.Message)
		if e.Error != "" {
			b.WriteString(" error: " + e.Error)
		}
		if len(e.Items) > 0 {
			b.WriteString(" items: " + strings.Join(e.Items, ", "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// JSON renders every event as a line of JSON, every field included: what
// a test searches when nothing may show a secret.
func (r *Recorder) JSON() string {
	var b strings.Builder
	for _, e := range r.Events() {
		data, err := json.Marshal(e)
		if err != nil {
			data = []byte(fmt.Sprintf("%q", fmt.Sprint(e)))
		}
		b.Write(data)
		b.WriteByte('\n')
	}
	return b.String()
}
