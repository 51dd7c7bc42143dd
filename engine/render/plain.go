package render

import (
	"io"
	"os"
	"strings"
	"sync"

	"github.com/imgbuild/imgbuild/engine/event"
)

// Plain prints events as prefixed lines, one write per event, for logs,
// pipes and terminals where a live board is not wanted. See the package
// documentation for the format.
type Plain struct {
	mu  sync.Mutex
	w   io.Writer
	d   *describer
	f   *prefixer
	err error
}

// NewPlain returns a Plain renderer writing to opts.Out (standard output if
// nil), in colour unless opts.NoColor, with timestamps if opts.Timestamps.
// opts.JSON is ignored. Unlike New it does not look at the writer or the
// environment: colour is on unless NoColor says otherwise.
func NewPlain(opts Options) *Plain {
	w := opts.out()
	return &Plain{w: w, d: newDescriber(false), f: newPrefixer(newPalette(w, !opts.NoColor), opts.Timestamps)}
}

// Handle implements event.Sink.
func (p *Plain) Handle(e event.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Type == event.BuildQueued {
		p.f.add(e.Build)
	}
	var b strings.Builder
	for _, l := range p.d.describe(e) {
		b.WriteString(p.f.format(e, l))
		b.WriteByte('\n')
	}
	if b.Len() == 0 || p.err != nil {
		return
	}
	if _, err := io.WriteString(p.w, b.String()); err != nil {
		p.err = err
	}
}

// Close reports the first error writing, if any; Plain holds nothing else.
func (p *Plain) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (o Options) out() io.Writer {
	if o.Out == nil {
		return os.Stdout
	}
	return o.Out
}
