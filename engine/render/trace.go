package render

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
)

// Trace is an event sink that writes a run as a Chrome trace (the Trace
// Event Format that chrome://tracing, Perfetto and speedscope read), so that
// users see where a pipeline's time goes:
//
//   - one track (thread) per build, named after it, in the order builds
//     were queued;
//   - on each track a span for the build, the time it waited for its
//     dependencies ("queued"), every step, every provisioner (inside the
//     step that provisions) and every cleanup.
//
// Spans still open when the trace is closed (an interrupted run) end at
// the last event seen. Close writes the file.
type Trace struct {
	mu     sync.Mutex
	w      io.Writer
	start  time.Time
	last   time.Time
	tracks map[string]int // build → tid
	order  []string
	open   map[spanKey]time.Time
	spans  []traceEvent
	closed bool
}

type spanKey struct{ build, cat, name string }

// traceEvent is one entry of traceEvents: a complete span ("X") or a
// metadata record ("M").
type traceEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat,omitempty"`
	Ph   string         `json:"ph"`
	Ts   int64          `json:"ts"`            // microseconds since the run started
	Dur  *int64         `json:"dur,omitempty"` // microseconds
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	Args map[string]any `json:"args,omitempty"`
}

// NewTrace returns a Trace writing to w on Close.
func NewTrace(w io.Writer) *Trace {
	return &Trace{w: w, tracks: map[string]int{}, open: map[spanKey]time.Time{}}
}

// Handle implements event.Sink.
func (t *Trace) Handle(e event.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.start.IsZero() {
		t.start = e.Time
	}
	if e.Time.After(t.last) {
		t.last = e.Time
	}
	if e.Build == "" {
		return
	}
	if _, ok := t.tracks[e.Build]; !ok {
		t.tracks[e.Build] = len(t.order) + 1
		t.order = append(t.order, e.Build)
	}
	switch e.Type {
	case event.BuildQueued:
		t.begin(e, "queue", "queued")
	case event.BuildStarted:
		t.end(e, "queue", "queued", nil)
		t.begin(e, "build", e.Build)
	case event.StepStarted:
		t.begin(e, "step", e.Step)
	case event.StepFinished:
		t.end(e, "step", e.Step, errArgs(e))
	case event.ProvisionerStarted:
		t.begin(e, "provisioner", e.Message)
	case event.ProvisionerFinished:
		t.end(e, "provisioner", e.Message, errArgs(e))
	case event.CleanupStarted:
		t.begin(e, "cleanup", "cleanup: "+e.Step)
	case event.CleanupFinished:
		t.end(e, "cleanup", "cleanup: "+e.Step, errArgs(e))
	case event.BuildFinished:
		// A build skipped or cancelled while queued ends its wait here.
		t.end(e, "queue", "queued", nil)
		args := map[string]any{"status": string(e.Status)}
		if e.Error != "" {
			args["error"] = e.Error
		}
		t.end(e, "build", e.Build, args)
	}
}

func errArgs(e event.Event) map[string]any {
	if e.Error == "" {
		return nil
	}
	return map[string]any{"error": e.Error}
}

func (t *Trace) begin(e event.Event, cat, name string) {
	t.open[spanKey{e.Build, cat, name}] = e.Time
}

func (t *Trace) end(e event.Event, cat, name string, args map[string]any) {
	k := spanKey{e.Build, cat, name}
	from, ok := t.open[k]
	if !ok {
		return
	}
	delete(t.open, k)
	t.span(k, from, e.Time, args)
}

func (t *Trace) span(k spanKey, from, to time.Time, args map[string]any) {
	dur := max(to.Sub(from).Microseconds(), 0)
	t.spans = append(t.spans, traceEvent{
		Name: k.name, Cat: k.cat, Ph: "X", Ts: from.Sub(t.start).Microseconds(), Dur: &dur,
		Pid: 1, Tid: t.tracks[k.build], Args: args,
	})
}

// Close ends the open spans at the last event and writes the trace.
func (t *Trace) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	for k, from := range t.open {
		t.span(k, from, t.last, map[string]any{"unfinished": true})
	}
	t.open = nil
	events := []traceEvent{{Name: "process_name", Ph: "M", Pid: 1, Args: map[string]any{"name": "imgbuild run"}}}
	for i, b := range t.order {
		tid := t.tracks[b]
		events = append(events,
			traceEvent{Name: "thread_name", Ph: "M", Pid: 1, Tid: tid, Args: map[string]any{"name": b}},
			traceEvent{Name: "thread_sort_index", Ph: "M", Pid: 1, Tid: tid, Args: map[string]any{"sort_index": i}})
	}
	events = append(events, t.spans...)
	enc := json.NewEncoder(t.w)
	enc.SetIndent("", " ")
	return enc.Encode(struct {
		TraceEvents     []traceEvent `json:"traceEvents"`
		DisplayTimeUnit string       `json:"displayTimeUnit"`
	}{events, "ms"})
}
