package render

import (
	"strings"

	"github.com/imgbuild/imgbuild/engine/event"
)

// stampLayout is the time of day that starts each line with timestamps on.
const stampLayout = "15:04:05.000"

// prefixer lays out a line: timestamp, build name padded to the longest
// one, separator, text, in colour if the palette has it.
type prefixer struct {
	pal        *palette
	timestamps bool
	index      map[string]int // build → order queued, for its colour
	width      int            // of the longest build name
}

func newPrefixer(pal *palette, timestamps bool) *prefixer {
	return &prefixer{pal: pal, timestamps: timestamps, index: map[string]int{}}
}

// add registers a build; names seen first in other events are added too,
// widening later prefixes.
func (f *prefixer) add(build string) int {
	if i, ok := f.index[build]; ok {
		return i
	}
	i := len(f.index)
	f.index[build] = i
	f.width = max(f.width, width(clean(build)))
	return i
}

// name is the build's name in its colour, padded to the common width.
func (f *prefixer) name(build string) string {
	i := f.add(build)
	n := clean(build)
	return pad(f.pal.paint(f.pal.buildStyle(i), n), f.width)
}

// format returns l as one printed line of e, without its newline.
func (f *prefixer) format(e event.Event, l line) string {
	var b strings.Builder
	if f.timestamps {
		b.WriteString(f.pal.paint(f.pal.faint, e.Time.Format(stampLayout)))
		b.WriteByte(' ')
	}
	text := clean(l.text)
	if st, ok := f.pal.kindStyle(l.kind); ok {
		text = f.pal.paint(st, text)
	}
	if e.Build != "" {
		sep := "|"
		if l.kind == kStderr {
			sep = f.pal.paint(f.pal.warn, "!")
		}
		b.WriteString(f.name(e.Build))
		b.WriteByte(' ')
		b.WriteString(sep)
		if text != "" {
			b.WriteByte(' ')
		}
	}
	b.WriteString(text)
	return b.String()
}
