package render

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
)

// kind says how a line is styled and which separator it takes.
type kind int

const (
	kInfo      kind = iota // the tool's own text
	kStep                  // "==> step"
	kStdout                // a command's standard output
	kStderr                // a command's standard error
	kWarning               // "warning: ..."
	kError                 // a failed step or cleanup
	kProgress              // "label: 40% (...)"
	kSucceeded             // a build's end, succeeded
	kFailed                // a build's end, failed
	kSkipped               // a build's end, skipped or cancelled
)

// line is one line of text describing (part of) an event, before prefixes,
// timestamps and colour.
type line struct {
	kind kind
	text string
}

// progressEvery is how long a progress label may go unprinted while it
// changes; progress is otherwise printed at each tenth of its total.
const progressEvery = 5 * time.Second

// describer turns events into lines. It remembers what it needs across
// events: which progress was last printed, each build's artifact.
type describer struct {
	// verbose adds the lines a log file wants and a terminal does not:
	// queued builds, finished steps, artifacts in full, every error.
	verbose   bool
	progress  map[progressKey]progressMark
	artifacts map[string]string // build → "id" or "id (n files)"
}

type progressKey struct{ build, label string }

type progressMark struct {
	at     time.Time
	done   int64
	bucket int64 // tenths of the total done; -1 when the total is unknown
}

func newDescriber(verbose bool) *describer {
	return &describer{verbose: verbose, progress: map[progressKey]progressMark{}, artifacts: map[string]string{}}
}

// describe returns the lines e shows as, none if it shows as nothing.
func (d *describer) describe(e event.Event) []line {
	var out []line
	add := func(k kind, text string) {
		for _, l := range strings.Split(text, "\n") {
			out = append(out, line{k, l})
		}
	}
	switch e.Type {
	case event.RunStarted:
		add(kInfo, joinNonEmpty("run started", e.Message))
	case event.BuildQueued:
		if d.verbose {
			add(kInfo, "queued"+paren(e.Driver))
		}
	case event.BuildStarted:
		add(kInfo, "build started"+paren(e.Driver))
	case event.StepStarted:
		add(kStep, "==> "+e.Step)
	case event.StepFinished:
		switch {
		case e.Error != "" && d.verbose:
			add(kError, fmt.Sprintf("step %s failed after %s: %s", e.Step, human(e.Elapsed), e.Error))
		case e.Error != "":
			add(kError, fmt.Sprintf("step %s failed after %s", e.Step, human(e.Elapsed)))
		case d.verbose:
			add(kInfo, fmt.Sprintf("step %s finished in %s", e.Step, human(e.Elapsed)))
		}
	case event.Message:
		add(kInfo, e.Message)
	case event.Warning:
		add(kWarning, "warning: "+e.Message)
	case event.Detail:
		if d.verbose {
			add(kInfo, e.Message)
		}
	case event.Output:
		k := kStdout
		if e.Stream == "stderr" {
			k = kStderr
		}
		out = append(out, line{k, e.Message}) // one line by construction
	case event.Progress:
		if d.printProgress(e) {
			add(kProgress, progressText(e))
		}
	case event.RunCancelling:
		add(kWarning, e.Message)
	case event.ProvisionerStarted:
		// Announced by the provisioning step's own message.
	case event.ProvisionerFinished:
		if d.verbose {
			verb := "finished"
			if e.Error != "" {
				verb = "failed"
			}
			add(kInfo, fmt.Sprintf("%s %s in %s", e.Message, verb, human(e.Elapsed)))
		}
	case event.TestStarted:
		// Announced by the test step's own message.
	case event.TestFinished:
		if e.Status == event.Passed {
			add(kSucceeded, fmt.Sprintf("test %q passed in %s", e.Message, human(e.Elapsed)))
			break
		}
		add(kFailed, fmt.Sprintf("test %q FAILED after %s: %s", e.Message, human(e.Elapsed), e.Error))
	case event.CleanupFinished:
		if d.verbose && e.Error == "" {
			add(kInfo, fmt.Sprintf("cleanup of %s finished in %s", e.Step, human(e.Elapsed)))
		}
	case event.CleanupStarted:
		add(kStep, "==> cleanup: "+e.Step)
	case event.CleanupFailed:
		add(kError, fmt.Sprintf("cleanup of %s failed: %s", e.Step, e.Error))
		for _, it := range e.Items {
			add(kError, "  may be left: "+it)
		}
	case event.Leftover:
		msg := e.Message
		if msg == "" {
			msg = "may be left"
		}
		add(kWarning, "warning: "+msg+":")
		for _, it := range e.Items {
			add(kWarning, "  - "+it)
		}
	case event.ArtifactMade:
		id, files := artifactOf(e)
		short := id
		if len(files) > 0 {
			short += fmt.Sprintf(" (%d %s)", len(files), plural(len(files), "file", "files"))
		}
		d.artifacts[e.Build] = short
		if d.verbose {
			add(kInfo, "artifact: "+short)
			for _, f := range files {
				add(kInfo, "  file: "+f)
			}
		}
	case event.BuildFinished:
		for k := range d.progress {
			if k.build == e.Build {
				delete(d.progress, k)
			}
		}
		out = append(out, d.finished(e)...)
	case event.RunFinished:
		add(kInfo, joinNonEmpty("run finished in "+human(e.Elapsed), e.Message))
	default:
		// A type this renderer does not know yet: show what it says.
		text := joinNonEmpty(e.Message, e.Error)
		if d.verbose {
			text = joinNonEmpty(string(e.Type), text)
		}
		if text != "" {
			add(kInfo, text)
		}
	}
	return out
}

// finished describes a BuildFinished event.
func (d *describer) finished(e event.Event) []line {
	var k kind
	var text string
	switch e.Status {
	case event.Succeeded:
		k, text = kSucceeded, "build succeeded in "+human(e.Elapsed)
		if a := d.artifacts[e.Build]; a != "" {
			text += ": " + a
		}
	case event.UpToDate:
		k, text = kSucceeded, e.Message
	case event.Failed:
		k, text = kFailed, "build failed after "+human(e.Elapsed)
		text = joinNonEmpty(text, reason(e, ""))
	case event.Skipped:
		k, text = kSkipped, joinNonEmpty("build skipped", reason(e, "skipped: "))
	case event.Cancelled:
		k, text = kSkipped, "build cancelled"
		if e.Elapsed > 0 {
			text += " after " + human(e.Elapsed)
		}
		text = joinNonEmpty(text, reason(e, "cancelled: "))
	default:
		k, text = kInfo, joinNonEmpty("build finished: "+string(e.Status), reason(e, ""))
	}
	delete(d.artifacts, e.Build)
	var out []line
	for i, l := range strings.Split(text, "\n") {
		if i > 0 {
			l = "  " + l // the rest of a multi-line error, under its start
		}
		out = append(out, line{k, l})
	}
	return out
}

// reason is why a build ended as it did: its error, else its message, with
// the status word the engine may put in front removed.
func reason(e event.Event, prefix string) string {
	r := e.Error
	if r == "" {
		r = e.Message
	}
	return strings.TrimPrefix(r, prefix)
}

// printProgress says whether a Progress event is worth a line: the first of
// its label, one that crosses a tenth of the total (or ends it), one that
// goes back (a new transfer under the same label), or a change after
// progressEvery.
func (d *describer) printProgress(e event.Event) bool {
	key := progressKey{e.Build, e.Message}
	total := progressTotal(e)
	bucket := int64(-1)
	if total > 0 {
		bucket = min(e.Done, total) * 10 / total
	}
	last, seen := d.progress[key]
	ok := !seen ||
		e.Done < last.done ||
		bucket > last.bucket ||
		(e.Done != last.done && e.Time.Sub(last.at) >= progressEvery)
	if ok {
		d.progress[key] = progressMark{at: e.Time, done: e.Done, bucket: bucket}
	}
	return ok
}

// progressTotal is e's total, 100 for a percentage without one.
func progressTotal(e event.Event) int64 {
	if e.Total <= 0 && e.Unit == "%" {
		return 100
	}
	return e.Total
}

// progressText is "label: 40% (400.0 MiB of 1.0 GiB)" and its variants.
func progressText(e event.Event) string {
	label := e.Message
	if label == "" {
		label = "progress"
	}
	return label + ": " + progressAmount(e)
}

// progressAmount is "40% (400.0 MiB of 1.0 GiB)", "40%", "400.0 MiB" or
// "3/10 files".
func progressAmount(e event.Event) string {
	total := progressTotal(e)
	switch {
	case e.Unit == "%":
		return fmt.Sprintf("%d%%", percent(e.Done, total))
	case total > 0 && e.Unit == "bytes":
		return fmt.Sprintf("%d%% (%s of %s)", percent(e.Done, total), byteSize(e.Done), byteSize(total))
	case total > 0:
		return strings.TrimSpace(fmt.Sprintf("%d%% (%d/%d %s)", percent(e.Done, total), e.Done, total, e.Unit))
	case e.Unit == "bytes":
		return byteSize(e.Done)
	default:
		return strings.TrimSpace(fmt.Sprintf("%d %s", e.Done, e.Unit))
	}
}

func percent(done, total int64) int64 {
	if total <= 0 {
		return 0
	}
	return min(max(done, 0), total) * 100 / total
}

// byteSize formats n bytes with binary units: "512 B", "1.5 KiB", "3.2 GiB".
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// human formats a duration for a person: "0.4s", "12.3s", "2m05s", "1h02m".
func human(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", d/time.Minute, d%time.Minute/time.Second)
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// clock formats a duration to the second, for the board: "7s", "2m05s".
func clock(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%ds", max(d, 0)/time.Second)
	}
	return human(d)
}

// artifactOf returns the id and files of an ArtifactMade event, from an
// *engine.Artifact when that is what it carries, else from its message.
func artifactOf(e event.Event) (id string, files []string) {
	if a, ok := e.Artifact.(*engine.Artifact); ok && a != nil {
		return a.ID, a.Files
	}
	return e.Message, nil
}

// clean makes text safe to print on one terminal line: a line redrawn with
// carriage returns keeps its last version, escape sequences and other
// control characters (but tabs) are removed.
func clean(s string) string {
	if i := strings.LastIndexByte(s, '\r'); i >= 0 {
		// "10%\r20%\r" shows "20%": the last non-empty version.
		parts := strings.Split(s, "\r")
		s = ""
		for j := len(parts) - 1; j >= 0; j-- {
			if parts[j] != "" {
				s = parts[j]
				break
			}
		}
	}
	if strings.IndexByte(s, 0x1b) >= 0 {
		s = ansi.Strip(s)
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return -1
		}
		return r
	}, s)
}

// shorten returns the first line of s, cut to at most n runes with "...".
func shorten(s string, n int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i]) + " ..."
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-3])) + "..."
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ": " + b
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
