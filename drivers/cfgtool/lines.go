package cfgtool

import (
	"bytes"
	"strings"
	"sync"
)

// maxLine bounds one line held in memory; a longer one is cut.
const maxLine = 64 << 10

// Lines is an io.Writer that splits a tool's output into lines, hands each
// to a function as it comes (to stream it to the build's log, or to read
// events out of it), and keeps the last ones for an error message.
type Lines struct {
	mu   sync.Mutex
	each func(line string)
	keep int
	last []string
	part []byte
}

// NewLines returns a Lines keeping the last keep lines and calling each
// (when not nil) for every line.
func NewLines(keep int, each func(line string)) *Lines {
	return &Lines{keep: keep, each: each}
}

// Write implements io.Writer.
func (l *Lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.part = append(l.part, p...)
			if len(l.part) > maxLine {
				l.line(string(l.part[:maxLine]))
				l.part = append(l.part[:0], l.part[maxLine:]...)
			}
			break
		}
		l.part = append(l.part, p[:i]...)
		l.line(string(l.part))
		l.part = l.part[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (l *Lines) line(s string) {
	s = strings.TrimSuffix(s, "\r")
	if l.each != nil {
		l.each(s)
	}
	if l.keep > 0 {
		l.last = append(l.last, s)
		if len(l.last) > l.keep {
			l.last = append(l.last[:0], l.last[len(l.last)-l.keep:]...)
		}
	}
}

// Close hands on an unterminated last line.
func (l *Lines) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.part) > 0 {
		l.line(string(l.part))
		l.part = l.part[:0]
	}
	return nil
}

// Last returns the lines kept, oldest first.
func (l *Lines) Last() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.last...)
}

// Indent joins lines for an error message, each on its own indented line.
func Indent(lines []string) string {
	return "\n    " + strings.Join(lines, "\n    ")
}
