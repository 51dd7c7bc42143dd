package render

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
)

// summaryErrWidth is the width the error column wraps at.
const summaryErrWidth = 60

// tailLines is how many of the failing command's last output lines the
// summary shows.
const tailLines = 5

// SummaryOptions say how WriteSummaryWith writes.
type SummaryOptions struct {
	// Color turns colour on.
	Color bool
	// Redact is applied to every cell (the bus's Redact); nil for none.
	Redact func(string) string
	// Tails holds, per build, the last output lines of its failing
	// command (Tails.Lines), shown under its error.
	Tails *Tails
	// Path turns a path the artifact names into the one to show (relative
	// to the current directory); nil shows it as it is.
	Path func(string) string
}

// WriteSummary is WriteSummaryWith without tails or path mapping.
func WriteSummary(w io.Writer, results []*engine.Result, color bool, redact func(string) string) error {
	return WriteSummaryWith(w, results, SummaryOptions{Color: color, Redact: redact})
}

// WriteSummaryWith writes a table of how each build ended, one row per
// result in the order given, then a line counting the statuses:
//
//	+-------+--------+-----------+---------+-------------------+-----------------------------------+
//	| BUILD | DRIVER | STATUS    | ELAPSED | ARTIFACT          | ERROR                             |
//	+-------+--------+-----------+---------+-------------------+-----------------------------------+
//	| base  | local  | succeeded | 1.2s    | output/x (3 files)|                                   |
//	| web   | local  | failed    | 0.3s    |                   | provision: provisioner 1/1: shell |
//	|       |        |           |         |                   | at web.star:3:20: exited with     |
//	|       |        |           |         |                   | status 100                        |
//	|       |        |           |         |                   |   E: Unable to locate package x   |
//	| app   | local  | skipped   |         |                   | it needs "web", which failed      |
//	+-------+--------+-----------+---------+-------------------+-----------------------------------+
//	3 builds: 1 succeeded, 1 failed, 1 skipped
//
// The error column holds the whole error (or the reason a build was
// skipped or cancelled, without that word), wrapped at 60 columns, the
// root cause last, and under it, indented, the last lines the failing
// command printed. With color, borders are rounded and faint and statuses
// coloured; without, borders are ASCII and no escape sequence is written.
// Nil results are left out. Every cell is passed through Redact before it
// is wrapped, so that no secret shows.
func WriteSummaryWith(w io.Writer, results []*engine.Result, o SummaryOptions) error {
	_, err := io.WriteString(w, summary(w, results, o))
	return err
}

func summary(w io.Writer, results []*engine.Result, o SummaryOptions) string {
	color, redact, path := o.Color, o.Redact, o.Path
	if redact == nil {
		redact = func(s string) string { return s }
	}
	if path == nil {
		path = func(s string) string { return s }
	}
	pal := newPalette(w, color)
	r := pal.r
	if r == nil {
		r = lipgloss.NewRenderer(w)
		r.SetColorProfile(termenv.Ascii)
	}
	var statuses []event.Status
	counts := map[string]int{}
	n := 0
	t := table.New().Headers("BUILD", "DRIVER", "STATUS", "ELAPSED", "ARTIFACT", "ERROR")
	for _, res := range results {
		if res == nil {
			continue
		}
		n++
		counts[res.Status.Shown()]++
		statuses = append(statuses, res.Status)
		var el, art, msg string
		if res.Elapsed > 0 {
			el = human(res.Elapsed)
		}
		if a := res.Artifact; a != nil && res.Status.OK() {
			art = clean(redact(path(a.ID)))
			if len(a.Files) > 0 {
				art += fmt.Sprintf(" (%d %s)", len(a.Files), plural(len(a.Files), "file", "files"))
			}
		}
		if res.Err != nil {
			msg = failureCause(strings.TrimPrefix(redact(res.Err.Error()), string(res.Status)+": "), o.Tails.Lines(res.Build), redact)
		}
		t.Row(clean(redact(res.Build)), clean(res.Driver), res.Status.Shown(), el, shorten(art, 60), msg)
	}
	cell := r.NewStyle().Padding(0, 1)
	t.StyleFunc(func(row, col int) lipgloss.Style {
		switch {
		case row == table.HeaderRow:
			return cell.Bold(color)
		case color && col == 2 && row >= 0 && row < len(statuses):
			return cell.Inherit(pal.statusStyle(statuses[row]))
		case color && col == 5:
			return cell.Inherit(pal.fail)
		}
		return cell
	})
	if color {
		t.Border(lipgloss.RoundedBorder()).BorderStyle(pal.faint)
	} else {
		t.Border(lipgloss.ASCIIBorder()).BorderStyle(r.NewStyle())
	}
	if IsTerminal(w) {
		// Wrap cells rather than let the terminal break the rows.
		if cols, _ := termSize(w); lipgloss.Width(t.String()) > cols {
			t.Width(cols)
		}
	}
	var b strings.Builder
	b.WriteString(t.String())
	b.WriteByte('\n')
	fmt.Fprintf(&b, "%d %s: %s\n", n, plural(n, "build", "builds"), countText(counts))
	return b.String()
}

// statusStyle is the colour of a build's final status.
func (p *palette) statusStyle(s event.Status) lipgloss.Style {
	switch s {
	case event.Succeeded, event.UpToDate:
		return p.ok
	case event.Failed:
		return p.fail
	}
	return p.skip
}

// failureCause is the error column's text: every line of the error wrapped
// at summaryErrWidth, then the command's last lines, indented and cut to
// that width.
func failureCause(msg string, tail []string, redact func(string) string) string {
	var out []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(clean(l)); l != "" {
			out = append(out, strings.Split(ansi.Wrap(l, summaryErrWidth, ""), "\n")...)
		}
	}
	for _, l := range tail {
		out = append(out, "  "+ansi.Truncate(clean(redact(l)), summaryErrWidth-2, "…"))
	}
	return strings.Join(out, "\n")
}

// Tails is an event sink keeping, per build, the last output lines of its
// current step: once a step fails, those of the failing command. Output
// during cleanup is not kept, so that it does not hide the cause.
type Tails struct {
	mu       sync.Mutex
	lines    map[string][]string
	cleaning map[string]bool
}

// NewTails returns an empty Tails.
func NewTails() *Tails { return &Tails{lines: map[string][]string{}, cleaning: map[string]bool{}} }

// Handle implements event.Sink.
func (t *Tails) Handle(e event.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch e.Type {
	case event.StepStarted:
		t.lines[e.Build], t.cleaning[e.Build] = nil, false
	case event.CleanupStarted:
		t.cleaning[e.Build] = true
	case event.Output:
		if t.cleaning[e.Build] || strings.TrimSpace(e.Message) == "" {
			return
		}
		l := append(t.lines[e.Build], e.Message)
		if len(l) > tailLines {
			l = l[len(l)-tailLines:]
		}
		t.lines[e.Build] = l
	}
}

// Lines returns the build's last output lines; a nil Tails has none.
func (t *Tails) Lines(build string) []string {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines[build]...)
}
