package render

import (
	"io"
	"os"
	"strings"

	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
	"golang.org/x/term"
)

// buildColours are the prefix colours given to builds in the order they are
// queued (ANSI 256-colour numbers, far from each other and from the red of
// failures); lipgloss brings them down to 16 colours where needed.
var buildColours = []string{"39", "170", "78", "141", "45", "111", "212", "80", "147", "218", "75", "115"}

// palette styles text; with colour off it leaves text as it is, without a
// single escape sequence.
type palette struct {
	color                             bool
	r                                 *lipgloss.Renderer
	step, warn, fail, ok, skip, faint lipgloss.Style
	bold, run                         lipgloss.Style
}

// newPalette returns the styles for w. With color, a writer whose colour
// support cannot be detected (not a terminal) gets 256 colours.
func newPalette(w io.Writer, color bool) *palette {
	p := &palette{color: color}
	if !color {
		return p
	}
	p.r = lipgloss.NewRenderer(w)
	if p.r.ColorProfile() == termenv.Ascii {
		p.r.SetColorProfile(termenv.ANSI256)
	}
	s := p.r.NewStyle
	p.step = s().Bold(true)
	p.bold = s().Bold(true)
	p.warn = s().Foreground(lipgloss.Color("214"))
	p.fail = s().Foreground(lipgloss.Color("203"))
	p.ok = s().Foreground(lipgloss.Color("42"))
	p.skip = s().Foreground(lipgloss.Color("244"))
	p.faint = s().Faint(true)
	p.run = s().Foreground(lipgloss.Color("39"))
	return p
}

// progressBar is the board's progress bar: bubbles' progress component,
// drawn statically with ViewAs (the board is no Bubble Tea program, so its
// animation is not used), a solid fill in the running colour over a grey
// track, the percentage left to the board (which shows 99% until the last
// byte, where the component would round up). With colour off it draws the
// runes alone.
func (p *palette) progressBar() progress.Model {
	profile := termenv.Ascii
	if p.color {
		profile = p.r.ColorProfile()
	}
	return progress.New(progress.WithColorProfile(profile), progress.WithoutPercentage(),
		progress.WithFillCharacters('█', '░'), progress.WithSolidFill("39"), func(m *progress.Model) { m.EmptyColor = "240" })
}

// paint renders text in st when colour is on.
func (p *palette) paint(st lipgloss.Style, text string) string {
	if !p.color || text == "" {
		return text
	}
	return st.Render(text)
}

// buildStyle is the style of the i-th queued build's name.
func (p *palette) buildStyle(i int) lipgloss.Style {
	if !p.color {
		return lipgloss.Style{}
	}
	return p.r.NewStyle().Foreground(lipgloss.Color(buildColours[i%len(buildColours)]))
}

// kindStyle is the style of a line's text.
func (p *palette) kindStyle(k kind) (lipgloss.Style, bool) {
	switch k {
	case kStep:
		return p.step, true
	case kWarning:
		return p.warn, true
	case kError, kFailed:
		return p.fail, true
	case kSucceeded:
		return p.ok, true
	case kSkipped:
		return p.skip, true
	case kProgress:
		return p.faint, true
	}
	return lipgloss.Style{}, false
}

// IsTerminal reports whether w is a terminal (an *os.File, or anything with
// an Fd method, open on one).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}

// termSize returns the size of the terminal w is open on, 80×24 if it is
// not one.
func termSize(w io.Writer) (width, height int) {
	if f, ok := w.(interface{ Fd() uintptr }); ok {
		if w, h, err := term.GetSize(int(f.Fd())); err == nil && w > 0 && h > 0 {
			return w, h
		}
	}
	return 80, 24
}

// width is the number of terminal cells s takes, escape sequences aside.
func width(s string) int { return ansi.StringWidth(s) }

// pad fills s with spaces to n cells.
func pad(s string, n int) string {
	if w := width(s); w < n {
		return s + strings.Repeat(" ", n-w)
	}
	return s
}

// colourEnvOff reports whether the environment asks for no colour
// (NO_COLOR set, https://no-color.org) or a terminal without capabilities.
func colourEnvOff() bool {
	return os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb"
}
