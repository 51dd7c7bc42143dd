package render

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/x/ansi"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/panics"
)

// redrawEvery is how often the board is redrawn at most.
const redrawEvery = 100 * time.Millisecond

// barWidth is the widest a progress bar gets, in cells; narrow terminals
// get a shorter one, down to 6.
const barWidth = 20

// Board is the live view for a terminal: the lines a plain renderer would
// print (but progress) scroll by, and below them a board redrawn in place,
// one row per build: its state, elapsed time, current step and, while it
// reports progress with a total, a progress bar.
//
//	base | ==> provision: shell
//	base | Reading package lists...
//	── imgbuild · 12s · 1 running, 1 queued ──────────────────
//	● base   running    12s  provision: shell  ████████░░░░ 40% upload: ...
//	○ web    queued
//
// Events only change the board's state; a goroutine redraws it at most ten
// times a second, and only when something changed. Redrawing moves the
// cursor up over the last board, erases to the end of the screen, prints the
// waiting lines and the new board. Close draws the last board and leaves
// it, the cursor on the line below.
type Board struct {
	mu      sync.Mutex
	w       io.Writer
	pal     *palette
	bar     progress.Model // how a progress bar is drawn; its Width set per frame
	f       *prefixer
	d       *describer
	rows    []*boardRow
	byName  map[string]*boardRow
	pending strings.Builder // lines waiting to scroll above the board
	drawn   int             // rows of the board on the screen
	last    string          // the board on the screen
	err     error           // the first error writing
	broken  error           // a panic while drawing

	runStart   time.Time
	runElapsed time.Duration
	runDone    bool
	cancelling bool // interrupted: the builds are cleaning up

	now  func() time.Time
	size func() (width, height int)

	closed    bool
	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// boardRow is the state of one build on the board.
type boardRow struct {
	name     string
	state    string // "queued", "running" or an event.Status
	step     string
	started  time.Time
	elapsed  time.Duration // once finished
	progress *event.Event  // the current step's last Progress
	prov     string        // the provisioner running: "shell 2/5 (scripts/setup.sh)"
	lastLine string        // the current step's last line of output
	detail   string        // once finished: artifact, error or reason
}

// NewBoard returns a board drawing on opts.Out (standard output if nil),
// which should be a terminal, and starts redrawing it. Colour is on unless
// opts.NoColor; opts.Timestamps stamps the scrolling lines. Close it.
func NewBoard(opts Options) *Board {
	w := opts.out()
	b := newBoard(w, !opts.NoColor, opts.Timestamps, time.Now, func() (int, int) { return termSize(w) })
	ticker := time.NewTicker(redrawEvery)
	b.redrawOn(ticker.C, ticker.Stop)
	return b
}

// newBoard returns a board that is not redrawn until flush is called.
func newBoard(w io.Writer, color, timestamps bool, now func() time.Time, size func() (int, int)) *Board {
	pal := newPalette(w, color)
	return &Board{
		w: w, pal: pal, bar: pal.progressBar(), f: newPrefixer(pal, timestamps), d: newDescriber(false),
		byName: map[string]*boardRow{}, now: now, size: size,
	}
}

// redrawOn starts redrawing b at each tick until Close, which calls
// stopTicks. A test hands it a channel of its own to tick at will.
func (b *Board) redrawOn(ticks <-chan time.Time, stopTicks func()) {
	b.stop, b.done = make(chan struct{}), make(chan struct{})
	go b.loop(ticks, stopTicks)
}

func (b *Board) loop(ticks <-chan time.Time, stopTicks func()) {
	defer close(b.done)
	defer stopTicks()
	for {
		select {
		case <-b.stop:
			return
		case <-ticks:
			b.mu.Lock()
			b.flush(false)
			b.mu.Unlock()
		}
	}
}

// Handle implements event.Sink.
func (b *Board) Handle(e event.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.update(e)
	if e.Type != event.Progress {
		for _, l := range b.d.describe(e) {
			b.pending.WriteString(b.f.format(e, l))
			b.pending.WriteByte('\n')
		}
	}
	if b.closed {
		b.flushLines()
	}
}

// row returns the named build's row, adding it if needed.
func (b *Board) row(name string) *boardRow {
	r, ok := b.byName[name]
	if !ok {
		r = &boardRow{name: name, state: "queued"}
		b.byName[name] = r
		b.rows = append(b.rows, r)
		b.f.add(name)
	}
	return r
}

// update changes the board's state for e.
func (b *Board) update(e event.Event) {
	switch e.Type {
	case event.RunStarted:
		b.runStart = e.Time
		return
	case event.RunFinished:
		b.runDone, b.runElapsed = true, e.Elapsed
		return
	case event.RunCancelling:
		b.cancelling = true
		return
	}
	if e.Build == "" {
		return
	}
	r := b.row(e.Build)
	switch e.Type {
	case event.BuildStarted:
		r.state, r.started = "running", e.Time
	case event.StepStarted:
		r.step, r.progress, r.prov, r.lastLine = e.Step, nil, "", ""
	case event.StepFinished:
		r.progress = nil
	case event.ProvisionerStarted:
		r.prov, r.lastLine = e.Message, ""
	case event.ProvisionerFinished, event.TestFinished:
		r.prov = ""
	case event.TestStarted:
		r.prov, r.lastLine = "test: "+e.Message, ""
	case event.Output:
		if l := strings.TrimSpace(clean(e.Message)); l != "" {
			r.lastLine = l
		}
	case event.CleanupStarted:
		r.step, r.progress, r.prov, r.lastLine = "cleanup: "+e.Step, nil, "", ""
	case event.Progress:
		p := e
		r.progress = &p
	case event.ArtifactMade:
		id, files := artifactOf(e)
		r.detail = id
		if len(files) > 0 {
			r.detail += fmt.Sprintf(" (%d %s)", len(files), plural(len(files), "file", "files"))
		}
	case event.BuildFinished:
		r.state, r.elapsed, r.step, r.progress = e.Status.Shown(), e.Elapsed, "", nil
		switch e.Status {
		case event.Succeeded:
		case event.UpToDate:
			r.detail = strings.TrimPrefix(e.Message, "up to date: ")
		default:
			r.detail = reason(e, string(e.Status)+": ")
		}
	}
}

// flush draws the board again if it changed or lines are waiting, or
// always with force. The caller holds b.mu.
//
// A panic while drawing (a bug) stops the board: later events print as
// plain lines, and Close reports it.
func (b *Board) flush(force bool) {
	if b.closed {
		return
	}
	if err := panics.Call(func() error { b.draw(force); return nil }); err != nil {
		b.closed, b.drawn = true, 0
		b.broken = fmt.Errorf("the live board stopped: %w", err)
	}
}

func (b *Board) draw(force bool) {
	lines := b.frame(b.now())
	board := strings.Join(lines, "\n")
	if !force && b.pending.Len() == 0 && board == b.last {
		return
	}
	var buf strings.Builder
	if b.drawn > 0 {
		// Back to the board's first row, and erase it and all below.
		fmt.Fprintf(&buf, "\r\x1b[%dA\x1b[J", b.drawn)
	}
	buf.WriteString(b.pending.String())
	b.pending.Reset()
	for _, l := range lines {
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	b.writeOut(buf.String())
	b.drawn, b.last = len(lines), board
}

// flushLines writes the waiting lines, once the board is closed.
func (b *Board) flushLines() {
	b.writeOut(b.pending.String())
	b.pending.Reset()
}

func (b *Board) writeOut(s string) {
	if s == "" || b.err != nil {
		return
	}
	if _, err := io.WriteString(b.w, s); err != nil {
		b.err = err
	}
}

// Close stops the redrawing, draws the final board and leaves it on the
// screen; events handled later are printed as plain lines below it. It
// reports the first error writing.
func (b *Board) Close() error {
	b.closeOnce.Do(func() {
		if b.stop != nil {
			close(b.stop)
			<-b.done
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		b.flush(true)
		b.closed, b.drawn = true, 0
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	return errors.Join(b.err, b.broken)
}

// frame returns the board's rows at time now, each cut to the terminal's
// width; no rows before any build is known.
func (b *Board) frame(now time.Time) []string {
	if len(b.rows) == 0 {
		return nil
	}
	cols, height := b.size()
	cols = max(cols-1, 20) // never the last column: no wrapping
	rows := b.visible(max(height-2, 3))
	counts := map[string]int{}
	for _, r := range b.rows {
		counts[r.state]++
	}
	lines := []string{b.header(now, counts, cols)}

	stepW, barW := 0, min(max((cols-60)/2, 6), barWidth)
	for _, r := range rows {
		if r != nil && r.state == "running" {
			stepW = max(stepW, min(width(clean(r.stepText())), 32, cols/4))
		}
	}
	shown := 0
	for _, r := range rows {
		if r == nil {
			continue
		}
		shown++
		lines = append(lines, b.rowLine(r, now, stepW, barW))
	}
	if hidden := len(b.rows) - shown; hidden > 0 {
		hc := map[string]int{}
		for _, r := range rows {
			if r != nil {
				hc[r.state]--
			}
		}
		for s, n := range counts {
			hc[s] += n
		}
		lines = append(lines, b.pal.paint(b.pal.faint, fmt.Sprintf("  … and %d more: %s", hidden, countText(hc))))
	}
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, cols, "…")
	}
	return lines
}

// visible chooses at most n-1 rows (the last line tells how many are left
// out) when there are more than n builds: running builds first, then failed
// ones, then the others in order. Rows left out are nil.
func (b *Board) visible(n int) []*boardRow {
	if len(b.rows) <= n {
		return b.rows
	}
	n--
	out := make([]*boardRow, len(b.rows))
	taken := 0
	for _, pass := range []func(*boardRow) bool{
		func(r *boardRow) bool { return r.state == "running" },
		func(r *boardRow) bool { return r.state == string(event.Failed) },
		func(r *boardRow) bool { return true },
	} {
		for i, r := range b.rows {
			if taken < n && out[i] == nil && pass(r) {
				out[i] = r
				taken++
			}
		}
	}
	return out
}

// header is the board's first line: a rule with the run's elapsed time and
// how many builds are in each state.
func (b *Board) header(now time.Time, counts map[string]int, width int) string {
	var el time.Duration
	switch {
	case b.runDone:
		el = b.runElapsed
	case !b.runStart.IsZero():
		el = now.Sub(b.runStart)
	}
	text := "── imgbuild · " + clock(el) + " · "
	if b.cancelling && !b.runDone {
		text += "cancelling, cleaning up… · "
	}
	text += countText(counts) + " "
	if n := width - ansi.StringWidth(text); n > 0 {
		text += strings.Repeat("─", n)
	}
	return b.pal.paint(b.pal.faint, text)
}

// stateOrder is the order states are counted in.
var stateOrder = []string{"running", string(event.Succeeded), event.UpToDate.Shown(), string(event.Failed), string(event.Skipped), string(event.Cancelled), "queued"}

// countText is "2 running, 1 succeeded, 3 queued".
func countText(counts map[string]int) string {
	var parts []string
	for _, s := range stateOrder {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	return strings.Join(parts, ", ")
}

// rowLine is one build's row.
func (b *Board) rowLine(r *boardRow, now time.Time, stepW, barW int) string {
	icon, st := "?", b.pal.faint
	switch r.state {
	case "queued":
		icon, st = "○", b.pal.faint
	case "running":
		icon, st = "●", b.pal.run
	case string(event.Succeeded):
		icon, st = "✓", b.pal.ok
	case event.UpToDate.Shown():
		icon, st = "=", b.pal.ok
	case string(event.Failed):
		icon, st = "✗", b.pal.fail
	case string(event.Skipped):
		icon, st = "↷", b.pal.skip
	case string(event.Cancelled):
		icon, st = "⊘", b.pal.skip
	}
	var el string
	switch {
	case r.state == "running":
		el = clock(now.Sub(r.started))
	case r.state != "queued" && r.elapsed > 0:
		el = clock(r.elapsed)
	}
	line := b.pal.paint(st, icon) + " " + b.f.name(r.name) + "  " +
		pad(b.pal.paint(st, r.state), 9) + "  " + fmt.Sprintf("%6s", el)
	var rest string
	switch {
	case r.state == "running" && r.progress != nil:
		rest = pad(ansi.Truncate(clean(r.stepText()), stepW, "…"), stepW) + "  " + b.progress(r.progress, barW)
	case r.state == "running":
		rest = clean(r.stepText())
		if r.lastLine != "" {
			rest += "  " + b.pal.paint(b.pal.faint, "│ "+r.lastLine)
		}
	default:
		rest = shorten(clean(strings.SplitN(r.detail, "\n", 2)[0]), 200)
		if r.state != string(event.Succeeded) && r.state != event.UpToDate.Shown() {
			rest = b.pal.paint(st, rest)
		}
	}
	if rest != "" {
		line += "  " + rest
	}
	return strings.TrimRight(line, " ")
}

// progress is, when the total is known, a bar, the percentage, the label
// and the amounts ("██░░ 40% disk.qcow2 400.0 MiB of 1.0 GiB": what matters
// most first, for narrow terminals); else the progress text.
func (b *Board) progress(e *event.Event, barW int) string {
	total := progressTotal(*e)
	if total <= 0 {
		return clean(progressText(*e))
	}
	bar := b.bar
	bar.Width = barW
	text := fmt.Sprintf("%s %3d%%", bar.ViewAs(float64(min(max(e.Done, 0), total))/float64(total)), percent(e.Done, total))
	if e.Message != "" {
		text += " " + clean(e.Message)
	}
	switch e.Unit {
	case "bytes":
		text += " " + byteSize(e.Done) + " of " + byteSize(total)
	case "%":
	default:
		text += strings.TrimRight(fmt.Sprintf(" %d/%d %s", e.Done, total, clean(e.Unit)), " ")
	}
	return text
}

// stepText is the row's step, with the provisioner running in it.
func (r *boardRow) stepText() string {
	if r.prov != "" {
		return r.step + ": " + r.prov
	}
	return r.step
}
