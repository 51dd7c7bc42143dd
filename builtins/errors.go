package builtins

import (
	"errors"
	"fmt"
	"strings"

	"github.com/imgbuild/imgbuild/engine/schema"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// ErrorList is every mistake an evaluation found, each "file:line:col:
// message" at the offending keyword, in the order found: validate reports
// them all, not only the first.
type ErrorList []error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the errors.
func (l ErrorList) Unwrap() []error { return l }

// Errors returns what the builtins collected, nil when nothing went wrong.
func (r *Recorder) Errors() ErrorList { return r.errs }

// collect records a keyword's mistake at the keyword's position in the
// calling file (the call's, when the keyword is not written there: a
// missing required one, or one passed with **kwargs), so that evaluation
// goes on and finds the next one.
func (r *Recorder) collect(thread *starlark.Thread, kw string, err error) {
	r.errs = append(r.errs, fmt.Errorf("%s: %v%s", r.keywordPos(thread, kw), err, backtrace(thread)))
}

// backtrace lists the calls that led to the builtin, as host.Error does,
// when it was called from inside a function.
func backtrace(thread *starlark.Thread) string {
	var frames []string
	for _, fr := range thread.CallStack() {
		if fr.Pos.Filename() == "<builtin>" || !fr.Pos.IsValid() {
			continue
		}
		frames = append(frames, fmt.Sprintf("%s: in %s", fr.Pos, fr.Name))
	}
	if len(frames) < 2 {
		return ""
	}
	return "\nbacktrace (most recent call last):\n  " + strings.Join(frames, "\n  ")
}

// collectDecode records a schema error at the keyword it names.
func (r *Recorder) collectDecode(thread *starlark.Thread, fn string, err error) {
	var fe *schema.FieldError
	kw := ""
	if errors.As(err, &fe) {
		kw = fe.Keyword
	}
	r.collect(thread, kw, fmt.Errorf("%s: %v", fn, err))
}

// keywordPos is where kw is written in the call the builtin was called
// from: the keyword's own line and column, found in the calling file's
// syntax tree by the call's opening parenthesis; the call's position when
// it is not there.
func (r *Recorder) keywordPos(thread *starlark.Thread, kw string) string {
	pos := thread.CallFrame(1).Pos
	if kw == "" || r.opts.Syntax == nil {
		return pos.String()
	}
	f := r.opts.Syntax(pos.Filename())
	if f == nil {
		return pos.String()
	}
	var found *syntax.Position
	syntax.Walk(f, func(n syntax.Node) bool {
		if found != nil {
			return false
		}
		c, ok := n.(*syntax.CallExpr)
		if !ok || c.Lparen.Line != pos.Line || c.Lparen.Col != pos.Col {
			return true
		}
		for _, a := range c.Args {
			if b, ok := a.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ {
				if id, ok := b.X.(*syntax.Ident); ok && id.Name == kw {
					p := id.NamePos
					found = &p
				}
			}
		}
		return found == nil
	})
	if found == nil {
		return pos.String()
	}
	return found.String()
}
