package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"github.com/muesli/termenv"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
)

// summaryErrWidth is how much of an error or reason the summary shows.
const summaryErrWidth = 60

// WriteSummary writes a table of how each build ended, one row per result
// in the order given, then a line counting the statuses:
//
//	+-------+--------+-----------+---------+-------------------+----------------------------+
//	| BUILD | DRIVER | STATUS    | ELAPSED | ARTIFACT          | ERROR                      |
//	+-------+--------+-----------+---------+-------------------+----------------------------+
//	| base  | local  | succeeded | 1.2s    | /tmp/x (3 files)  |                            |
//	| web   | local  | failed    | 0.3s    |                   | provision: exit status 1   |
//	| app   | local  | skipped   |         |                   | it needs "web", which ...  |
//	+-------+--------+-----------+---------+-------------------+----------------------------+
//	3 builds: 1 succeeded, 1 failed, 1 skipped
//
// The error column holds the first line of the error (or the reason a build
// was skipped or cancelled, without that word), cut to 60 characters; the
// full text is in the build's log. With color, borders are rounded and faint
// and statuses coloured; without, borders are ASCII and no escape sequence
// is written. Nil results are left out. Every cell is passed through redact
// (the bus's Redact, so that no secret shows; nil for none) before it is
// cut, so that no cut leaves the start of a secret.
func WriteSummary(w io.Writer, results []*engine.Result, color bool, redact func(string) string) error {
	_, err := io.WriteString(w, summary(w, results, color, redact))
	return err
}

func summary(w io.Writer, results []*engine.Result, color bool, redact func(string) string) string {
	if redact == nil {
		redact = func(s string) string { return s }
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
		counts[string(res.Status)]++
		statuses = append(statuses, res.Status)
		var el, art, msg string
		if res.Elapsed > 0 {
			el = human(res.Elapsed)
		}
		if a := res.Artifact; a != nil && res.Status == event.Succeeded {
			art = clean(redact(a.ID))
			if len(a.Files) > 0 {
				art += fmt.Sprintf(" (%d %s)", len(a.Files), plural(len(a.Files), "file", "files"))
			}
		}
		if res.Err != nil {
			msg = strings.TrimPrefix(redact(res.Err.Error()), string(res.Status)+": ")
			msg = shorten(clean(strings.SplitN(msg, "\n", 2)[0]), summaryErrWidth)
		}
		t.Row(clean(redact(res.Build)), clean(res.Driver), string(res.Status), el, shorten(art, 60), msg)
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
	case event.Succeeded:
		return p.ok
	case event.Failed:
		return p.fail
	}
	return p.skip
}
