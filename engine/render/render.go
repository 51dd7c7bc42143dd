package render

import (
	"io"

	"github.com/imgbuild/imgbuild/engine/event"
)

// Options choose a renderer and how it prints.
type Options struct {
	// Out is where the renderer writes; nil means standard output.
	Out io.Writer
	// JSON prints one JSON object per event per line (--json).
	JSON bool
	// NoColor turns colour off (--no-color); New then prints plain lines
	// even on a terminal.
	NoColor bool
	// Timestamps starts each printed line (plain, and those scrolling above
	// the board) with the event's time of day, "15:04:05.000"
	// (--timestamps). JSON ignores it: every event has its "time".
	Timestamps bool
}

// Renderer is an event sink that must be closed when the run is over: Close
// stops what runs in the background, writes what is left (the board's last
// state) and reports the first error writing.
type Renderer interface {
	event.Sink
	Close() error
}

// New returns the renderer for opts:
//   - JSON lines (NewJSON) with opts.JSON;
//   - else the live board (NewBoard) when opts.Out is a terminal, colour is
//     not turned off by opts.NoColor or the NO_COLOR environment variable,
//     and TERM is not "dumb";
//   - else plain lines (NewPlain), without colour.
//
// While a board is open, nothing else should write to the terminal: report
// through events, and print the summary after Close.
func New(opts Options) Renderer {
	out := opts.out()
	opts.Out = out
	switch {
	case opts.JSON:
		return NewJSON(out)
	case !opts.NoColor && !colourEnvOff() && IsTerminal(out):
		return NewBoard(opts)
	}
	opts.NoColor = true
	return NewPlain(opts)
}
