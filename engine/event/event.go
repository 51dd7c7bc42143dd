// Package event is the stream every layer reports through: builds and steps
// starting, lines of command output, progress, artifacts, errors. Renderers
// (terminal, plain lines, JSON, per-build log files) subscribe to a Bus.
// The Bus redacts every registered secret before any subscriber sees an
// event, so no renderer can print one.
package event

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/imgbuild/imgbuild/engine/panics"
	"github.com/imgbuild/imgbuild/engine/redact"
)

// Type says what happened.
type Type string

// Event types, in the order a run usually emits them.
const (
	RunStarted   Type = "run_started"
	BuildQueued  Type = "build_queued"
	BuildStarted Type = "build_started"
	StepStarted  Type = "step_started"
	StepFinished Type = "step_finished"
	Message      Type = "message"
	Warning      Type = "warning"
	Output       Type = "output"
	Progress     Type = "progress"
	// ProvisionerStarted and ProvisionerFinished bracket one provisioner,
	// inside the step that provisions; Message names it ("shell 2/5
	// (scripts/setup.sh)").
	ProvisionerStarted  Type = "provisioner_started"
	ProvisionerFinished Type = "provisioner_finished"
	// TestStarted and TestFinished bracket one of a build's tests, run on
	// a machine launched from the new image: Message is the test's name;
	// TestFinished's Status is Passed or Failed, its Error why it failed
	// and its Items the last lines of its output.
	TestStarted    Type = "test_started"
	TestFinished   Type = "test_finished"
	CleanupStarted Type = "cleanup_started"
	// CleanupFinished ends a step's cleanup, failed or not.
	CleanupFinished Type = "cleanup_finished"
	CleanupFailed   Type = "cleanup_failed"
	Leftover        Type = "leftover"
	// Detail is text for the log files and --json only, not for the
	// terminal: the stack of a panic.
	Detail        Type = "detail"
	ArtifactMade  Type = "artifact"
	BuildFinished Type = "build_finished"
	RunFinished   Type = "run_finished"
	// UsageError is a run that could not start: bad flags or an invalid
	// description (with --json, the only event).
	UsageError Type = "usage_error"
	// RunCancelling says the run was interrupted and its builds are
	// cleaning up; Message says so to the user.
	RunCancelling Type = "run_cancelling"
)

// Status is how a build ended.
type Status string

// Build statuses.
const (
	Succeeded Status = "succeeded"
	Failed    Status = "failed"
	Skipped   Status = "skipped"
	Cancelled Status = "cancelled"
	// UpToDate is a build not run because nothing it depends on changed
	// and its driver confirmed that its artifact is still there.
	UpToDate Status = "up_to_date"
	// Passed is a test that passed (TestFinished); a test that did not
	// is Failed.
	Passed Status = "passed"
)

// OK reports whether the build has its artifact: it succeeded, or was up
// to date.
func (s Status) OK() bool { return s == Succeeded || s == UpToDate }

// Shown is the status as people read it: "up to date", "failed".
func (s Status) Shown() string {
	if s == UpToDate {
		return "up to date"
	}
	return string(s)
}

// Event is one thing that happened. Fields not relevant to a Type are empty.
type Event struct {
	Time     time.Time     `json:"time"`
	Type     Type          `json:"type"`
	Build    string        `json:"build,omitempty"`
	Driver   string        `json:"driver,omitempty"`
	Step     string        `json:"step,omitempty"`
	Stream   string        `json:"stream,omitempty"` // "stdout" or "stderr" for Output
	Message  string        `json:"message,omitempty"`
	Done     int64         `json:"done,omitempty"`  // Progress: units done
	Total    int64         `json:"total,omitempty"` // Progress: units in all (0: unknown)
	Unit     string        `json:"unit,omitempty"`  // Progress: "bytes", "%"
	Status   Status        `json:"status,omitempty"`
	Error    string        `json:"error,omitempty"` // why a build failed, was skipped or cancelled
	Elapsed  time.Duration `json:"elapsed_ns,omitempty"`
	Artifact any           `json:"artifact,omitempty"`
	Items    []string      `json:"items,omitempty"` // Leftover: what may be left; BuildQueued: the builds it waits for
}

// Sink receives events. Handle is called from one goroutine at a time.
type Sink interface {
	Handle(Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

// Handle implements Sink.
func (f SinkFunc) Handle(e Event) { f(e) }

// Bus fans events out to sinks, in order, after redacting secrets. A sink
// that panics is dropped, and the others get a warning saying so, with the
// stack as a Detail: a renderer's bug never stops a run.
type Bus struct {
	mu      sync.Mutex
	sinks   []Sink
	secrets redact.Set
	now     func() time.Time
	broken  []error
}

// NewBus returns a Bus delivering to sinks.
func NewBus(sinks ...Sink) *Bus { return &Bus{sinks: sinks, now: time.Now} }

// Subscribe adds a sink.
func (b *Bus) Subscribe(s Sink) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sinks = append(b.sinks, s)
}

// AddSecret registers a value that must never be shown; every later event
// has it replaced by "(sensitive)", also where it is quoted or cut short
// (package redact). Empty strings are ignored.
func (b *Bus) AddSecret(s string) { b.secrets.Add(s) }

// Redact replaces every registered secret in s.
func (b *Bus) Redact(s string) string {
	if b == nil {
		return s
	}
	return b.secrets.Redact(s)
}

func (b *Bus) redact(s string) string { return b.secrets.Redact(s) }

// Emit stamps e with the time if unset, redacts it and delivers it.
func (b *Bus) Emit(e Event) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = b.now()
	}
	e.Message = b.redact(e.Message)
	e.Error = b.redact(e.Error)
	e.Step = b.redact(e.Step)
	if len(e.Items) > 0 {
		items := make([]string, len(e.Items)) // never the emitter's slice
		for i, it := range e.Items {
			items[i] = b.redact(it)
		}
		e.Items = items
	}
	if e.Artifact != nil && b.secrets.Len() > 0 {
		e.Artifact = redactAny(e.Artifact, b.redact)
	}
	b.deliver(e)
}

// deliver gives e to every sink, dropping those that panic.
func (b *Bus) deliver(e Event) {
	var failed []*panics.Error
	var names []string
	kept := b.sinks[:0:0]
	for _, s := range b.sinks {
		err := panics.Call(func() error { s.Handle(e); return nil })
		if pe, ok := err.(*panics.Error); ok {
			failed = append(failed, pe)
			names = append(names, fmt.Sprintf("%T", s))
			continue
		}
		kept = append(kept, s)
	}
	if len(failed) == 0 {
		return
	}
	b.sinks = kept
	for i, pe := range failed {
		err := fmt.Errorf("the %s output stopped at a %s event: %w", names[i], e.Type, pe)
		b.broken = append(b.broken, err)
		b.deliver(Event{Time: e.Time, Type: Warning, Message: b.redact(err.Error())})
		b.deliver(Event{Time: e.Time, Type: Detail, Message: b.redact(pe.Stack)})
	}
}

// Broken returns why sinks were dropped (they panicked), for the command
// to say so once the run is over: the sink that stopped may have been the
// terminal.
func (b *Bus) Broken() []error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]error(nil), b.broken...)
}

// redactAny redacts strings inside an artifact by a round trip through its
// printed form when it holds a secret; artifacts rarely do.
func redactAny(a any, redact func(string) string) any {
	if r, ok := a.(interface{ Redacted(func(string) string) any }); ok {
		return r.Redacted(redact)
	}
	return a
}

// UI is a build's handle on the bus: what drivers, steps and provisioners
// use to report. A nil *UI discards everything.
type UI struct {
	bus    *Bus
	build  string
	driver string
	mu     sync.Mutex
	step   string
	access *Access
	taps   map[int]func(Event)
	tapID  int
}

// Tap calls fn with every event this UI emits from now on, before its
// secrets are redacted, until the returned function is called: how the
// engine keeps the last lines a test printed.
func (u *UI) Tap(fn func(Event)) (untap func()) {
	if u == nil {
		return func() {}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.taps == nil {
		u.taps = map[int]func(Event){}
	}
	u.tapID++
	id := u.tapID
	u.taps[id] = fn
	return func() {
		u.mu.Lock()
		delete(u.taps, id)
		u.mu.Unlock()
	}
}

// Access says how a person reaches a build's machine, for --debug and
// --on-error: an SSH login, or a command (a chroot, a directory). It is
// kept on the build's UI and never sent as an event, since it may hold the
// build's private key.
type Access struct {
	// User, Host and Port are the SSH login; Host is empty for machines
	// not reached over SSH.
	User, Host string
	Port       int
	// Key is the private key to log in with, in OpenSSH PEM form, when the
	// build made its own; KeyFile names the user's key file otherwise.
	Key     []byte
	KeyFile string
	// Jump is the bastion, "user@host:port", if any.
	Jump string
	// Command is how to reach a machine that is not reached over SSH
	// ("sudo chroot /tmp/x /bin/sh"), or "" to build the ssh command line.
	Command string
}

// SetAccess records how to reach the build's machine; nil forgets it (the
// machine is gone).
func (u *UI) SetAccess(a *Access) {
	if u == nil {
		return
	}
	u.mu.Lock()
	u.access = a
	u.mu.Unlock()
}

// Access returns how to reach the build's machine, or nil when no step has
// said.
func (u *UI) Access() *Access {
	if u == nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.access
}

// NewUI returns the UI of one build.
func NewUI(bus *Bus, build, driver string) *UI { return &UI{bus: bus, build: build, driver: driver} }

// Build is the name of the build this UI reports for.
func (u *UI) Build() string {
	if u == nil {
		return ""
	}
	return u.build
}

// Bus returns the bus this UI emits to.
func (u *UI) Bus() *Bus {
	if u == nil {
		return nil
	}
	return u.bus
}

// Emit sends e as this build's event, in its current step.
func (u *UI) Emit(e Event) {
	if u == nil {
		return
	}
	u.mu.Lock()
	e.Build, e.Driver = u.build, u.driver
	if e.Step == "" {
		e.Step = u.step
	}
	taps := make([]func(Event), 0, len(u.taps))
	for _, fn := range u.taps {
		taps = append(taps, fn)
	}
	u.mu.Unlock()
	for _, fn := range taps {
		fn(e)
	}
	u.bus.Emit(e)
}

// SetStep records the step later events belong to.
func (u *UI) SetStep(name string) {
	if u == nil {
		return
	}
	u.mu.Lock()
	u.step = name
	u.mu.Unlock()
}

// Say reports a message.
func (u *UI) Say(format string, args ...any) {
	u.Emit(Event{Type: Message, Message: fmt.Sprintf(format, args...)})
}

// Detail reports text for the log files only (see Detail).
func (u *UI) Detail(text string) {
	u.Emit(Event{Type: Detail, Message: text})
}

// Panicked puts the stack of err in the build's log (a Detail event) when
// err is a recovered panic (*panics.Error) not logged yet; other errors are
// left to the caller to report.
func (u *UI) Panicked(err error) {
	if pe, ok := err.(*panics.Error); ok && pe.FirstLog() {
		u.Detail("stack of the panic:\n" + pe.Stack)
	}
}

// Warn reports a warning.
func (u *UI) Warn(format string, args ...any) {
	u.Emit(Event{Type: Warning, Message: fmt.Sprintf(format, args...)})
}

// Progress reports done out of total units ("bytes" or "%") for label.
func (u *UI) Progress(label string, done, total int64, unit string) {
	u.Emit(Event{Type: Progress, Message: label, Done: done, Total: total, Unit: unit})
}

// Lines returns a writer that emits each complete line written to it as an
// Output event on stream ("stdout", "stderr"). Close flushes a last
// unterminated line. It is safe for one writer goroutine.
func (u *UI) Lines(stream string) io.WriteCloser {
	return &lineWriter{ui: u, stream: stream}
}

type lineWriter struct {
	ui     *UI
	stream string
	buf    []byte
}

// maxLine bounds a line held in memory; longer ones are split.
const maxLine = 64 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) >= maxLine {
				w.split()
			}
			break
		}
		w.buf = append(w.buf, p[:i]...)
		w.flush()
		p = p[i+1:]
	}
	return n, nil
}

// split emits the first maxLine bytes or so of an over-long line and keeps
// the rest. Secrets are hidden in the whole line first, and the cut is moved
// back before the start of any secret the first part would end with, so
// that no secret is ever shown in two halves that each escape redaction.
func (w *lineWriter) split() {
	var set *redact.Set
	if w.ui != nil && w.ui.bus != nil {
		set = &w.ui.bus.secrets
		w.buf = append(w.buf[:0], set.Redact(string(w.buf))...)
	}
	cut := set.SafeCut(w.buf, maxLine)
	rest := append([]byte(nil), w.buf[cut:]...)
	w.buf = w.buf[:cut]
	w.flush()
	w.buf = append(w.buf, rest...)
}

func (w *lineWriter) flush() {
	line := strings.TrimSuffix(string(w.buf), "\r")
	w.buf = w.buf[:0]
	w.ui.Emit(Event{Type: Output, Stream: w.stream, Message: line})
}

func (w *lineWriter) Close() error {
	if len(w.buf) > 0 {
		w.flush()
	}
	return nil
}
