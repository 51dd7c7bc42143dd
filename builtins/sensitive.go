package builtins

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/imgbuild/imgbuild/engine/redact"
	"github.com/imgbuild/imgbuild/engine/value"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// How sensitive values survive being turned into text.
//
// A Secret is a string-like value whose every derived string is a Secret
// too: +, *, %, format(), join(), str(), slicing and the string methods
// (upper, replace, split, ...) all give sensitive strings, which reach the
// machine with their real value and are shown as (sensitive). Where
// go.starlark.net itself turns a value into text ("%s" % tok,
// "{}".format(tok), str(tok), json.encode), it calls the value's String
// method; a Secret answers with a marker, ⟦imgbuild-sensitive-N⟧, that
// names it without holding it. Text holding markers is read back into a
// sensitive string by the formatting builtins (the description's %, format
// and join are routed through them, see format.go) and, whatever way it
// took, by every keyword that receives it; text shown to the user (print,
// errors) has markers replaced by (sensitive). A marker that was cut or
// changed is an error, never a silent wrong value.
const (
	markOpen  = "⟦imgbuild-sensitive-"
	markClose = "⟧"
)

var markPattern = regexp.MustCompile(`⟦imgbuild-sensitive-([0-9]+)⟧`)

// sensitive is one evaluation's sensitive strings: those markers name, and
// every one made, for redacting what the evaluation shows.
type sensitive struct {
	values []string
	index  map[string]int
	set    redact.Set
	known  func(build string) bool
}

func newSensitive(known func(string) bool) *sensitive {
	return &sensitive{index: map[string]int{}, known: known}
}

// secret returns s as a Secret.
func (t *sensitive) secret(s string) *Secret {
	t.hide(s)
	return &Secret{s: s, tab: t}
}

// hide registers s for redaction, unless it holds a secret already
// registered ("Bearer " + tok): then hiding that one is enough, and what
// is not secret stays readable.
func (t *sensitive) hide(s string) {
	if !t.set.Covers(s) {
		t.set.Add(s)
	}
}

// marker returns the text that stands for s in formatted strings.
func (t *sensitive) marker(s string) string {
	i, ok := t.index[s]
	if !ok {
		i = len(t.values)
		t.values = append(t.values, s)
		t.index[s] = i
		t.hide(s)
	}
	return markOpen + strconv.Itoa(i) + markClose
}

// declare returns the value of a sensitive variable as a Secret; the value
// is always hidden whole.
func (t *sensitive) declare(s string) *Secret {
	t.set.Add(s)
	return &Secret{s: s, tab: t}
}

// Redact hides every sensitive string and marker in text shown to the user.
// A marker reads as its value redacted: "Bearer " + tok as
// "Bearer (sensitive)".
func (t *sensitive) Redact(text string) string {
	if strings.Contains(text, markOpen) {
		text = markPattern.ReplaceAllStringFunc(text, func(m string) string {
			i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(m, markOpen), markClose))
			if err != nil || i >= len(t.values) {
				return redact.Mask
			}
			return t.set.Redact(t.values[i])
		})
	}
	return t.set.Redact(text)
}

// parts splits text into literals, sensitive literals (from markers) and
// references to known builds' outputs ("${build.output}"). Literals are
// sensitive when all is set.
func (t *sensitive) parts(text string, all bool) ([]value.Part, error) {
	var ps []value.Part
	last := 0
	for _, m := range markPattern.FindAllStringSubmatchIndex(text, -1) {
		i, err := strconv.Atoi(text[m[2]:m[3]])
		if err != nil || i >= len(t.values) {
			return nil, errChangedMarker
		}
		ps = append(ps, t.refParts(text[last:m[0]], all)...)
		ps = append(ps, value.Part{Lit: t.values[i], Sensitive: true})
		last = m[1]
	}
	ps = append(ps, t.refParts(text[last:], all)...)
	for _, p := range ps {
		if !p.Sensitive && (strings.Contains(p.Lit, "imgbuild-sensitive-") || strings.Contains(p.Lit, markClose)) {
			return nil, errChangedMarker
		}
	}
	return mergeParts(ps), nil
}

// errChangedMarker is the error for text in which a sensitive value was
// formatted and then cut or changed as plain text.
var errChangedMarker = fmt.Errorf("a sensitive value was formatted into this string and the text then cut or changed, so its value is lost; " +
	"make strings from sensitive values with +, %%, format(), join() or str(), and change the sensitive string itself (tok.upper(), tok[2:])")

// refParts splits a literal at the run values ("${run:timestamp}") and
// the references to known builds' outputs ("${build.output}") formatted
// into it.
func (t *sensitive) refParts(s string, sensitive bool) []value.Part {
	if s == "" {
		return nil
	}
	if !strings.Contains(s, "${") {
		return []value.Part{{Lit: s, Sensitive: sensitive}}
	}
	var ps []value.Part
	for _, rp := range runParts(s) {
		if rp.Run != nil {
			ps = append(ps, rp)
			continue
		}
		last := 0
		for _, l := range refPattern.FindAllStringSubmatchIndex(rp.Lit, -1) {
			build, out := rp.Lit[l[2]:l[3]], rp.Lit[l[4]:l[5]]
			if t.known == nil || !t.known(build) {
				continue
			}
			ps = append(ps, value.Part{Lit: rp.Lit[last:l[0]], Sensitive: sensitive}, value.Part{Ref: &value.Ref{Build: build, Output: out}})
			last = l[1]
		}
		ps = append(ps, value.Part{Lit: rp.Lit[last:], Sensitive: sensitive})
	}
	return ps
}

// fromText reads formatted text back into a Starlark value: a plain
// string, a Secret, or a Template when it refers to outputs. With all set,
// the whole text is sensitive (it was derived from a secret).
func (t *sensitive) fromText(text string, all bool) (starlark.Value, error) {
	if !all && !strings.Contains(text, markOpen) && !strings.Contains(text, markClose) {
		return starlark.String(text), nil
	}
	ps, err := t.parts(text, all)
	if err != nil {
		return nil, err
	}
	return t.fromParts(ps), nil
}

// fromParts makes the value the parts spell: a string, a Secret if some
// part is sensitive, a Template if some part is a reference.
func (t *sensitive) fromParts(ps []value.Part) starlark.Value {
	var b strings.Builder
	sens := false
	for _, p := range ps {
		if p.Ref != nil || p.Run != nil {
			return &Template{parts: ps, tab: t}
		}
		b.WriteString(p.Lit)
		sens = sens || p.Sensitive
	}
	if sens {
		return t.secret(b.String())
	}
	return starlark.String(b.String())
}

// setting converts a string received by a keyword into a setting value,
// reading back markers and references.
func (t *sensitive) setting(s string) (value.Value, error) {
	if !strings.Contains(s, "${") && !strings.Contains(s, markOpen) && !strings.Contains(s, markClose) {
		return value.String{S: s}, nil
	}
	ps, err := t.parts(s, false)
	if err != nil {
		return nil, err
	}
	hasRef, sens := false, false
	var b strings.Builder
	for _, p := range ps {
		hasRef = hasRef || p.Ref != nil || p.Run != nil
		sens = sens || p.Sensitive
		b.WriteString(p.Lit)
	}
	if hasRef {
		return &value.Template{Parts: ps}, nil
	}
	return value.String{S: b.String(), Sensitive: sens}, nil
}

// taint makes the result of a string operation on a secret sensitive:
// strings become Secrets (or Templates, when they name outputs), lists and
// tuples of them likewise; numbers and booleans stay as they are.
func (t *sensitive) taint(v starlark.Value) (starlark.Value, error) {
	switch v := v.(type) {
	case starlark.String:
		return t.fromText(string(v), true)
	case *starlark.List:
		out := make([]starlark.Value, v.Len())
		for i := range out {
			e, err := t.taint(v.Index(i))
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return starlark.NewList(out), nil
	case starlark.Tuple:
		out := make(starlark.Tuple, len(v))
		for i, e := range v {
			te, err := t.taint(e)
			if err != nil {
				return nil, err
			}
			out[i] = te
		}
		return out, nil
	case starlark.Iterable:
		// elems() and codepoints(): iterables of one-character strings.
		var out []starlark.Value
		it := v.Iterate()
		defer it.Done()
		var e starlark.Value
		for it.Next(&e) {
			te, err := t.taint(e)
			if err != nil {
				return nil, err
			}
			out = append(out, te)
		}
		return starlark.NewList(out), nil
	}
	return v, nil
}

// plain is x as plain text when it is sensitive or refers to outputs (the
// real value of a Secret, "${build.output}" for references), for passing
// to go.starlark.net's string methods, whose result is then tainted whole.
// Lists and tuples are converted element by element.
func plain(x starlark.Value) starlark.Value {
	switch x := x.(type) {
	case *Secret:
		return starlark.String(x.s)
	case *Ref, *RunTime:
		return starlark.String(x.String())
	case *Template:
		return starlark.String(value.PartsText(x.parts, runText, func(lit string) string { return lit }))
	case *starlark.List:
		out := make([]starlark.Value, x.Len())
		for i := range out {
			out[i] = plain(x.Index(i))
		}
		return starlark.NewList(out)
	case starlark.Tuple:
		out := make(starlark.Tuple, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return x
}

// Secret is a sensitive string. It behaves as a string does (+, *, %, in,
// comparisons, len, indexing, slicing and every string method), and every
// string made from it is a Secret too; it is shown as (sensitive) and
// reaches the machine with its real value. Only == against a plain string
// cannot be offered (go.starlark.net never asks a value about equality with
// another type): compare with len(), startswith() or another Secret.
type Secret struct {
	s   string
	tab *sensitive
}

var (
	_ starlark.HasAttrs                          = (*Secret)(nil)
	_ starlark.Sliceable                         = (*Secret)(nil)
	_ starlark.Comparable                        = (*Secret)(nil)
	_ starlark.HasBinary                         = (*Secret)(nil)
	_ starlark.Value                             = (*Secret)(nil)
	_ interface{ MarshalJSON() ([]byte, error) } = (*Secret)(nil)
)

// String is the marker standing for the secret in formatted text.
func (s *Secret) String() string {
	if s.tab == nil {
		return redact.Mask
	}
	return s.tab.marker(s.s)
}
func (s *Secret) Type() string          { return "sensitive string" }
func (s *Secret) Freeze()               {}
func (s *Secret) Truth() starlark.Bool  { return s.s != "" }
func (s *Secret) Hash() (uint32, error) { return starlark.String(s.s).Hash() }

// Len is the length in bytes, as for strings.
func (s *Secret) Len() int { return len(s.s) }

// Index is the i-th byte, as a sensitive string.
func (s *Secret) Index(i int) starlark.Value { return s.tab.secret(s.s[i : i+1]) }

// Slice is tok[start:end:step], as a sensitive string.
func (s *Secret) Slice(start, end, step int) starlark.Value {
	return s.tab.secret(string(starlark.String(s.s).Slice(start, end, step).(starlark.String)))
}

// CompareSameType compares two secrets as strings.
func (s *Secret) CompareSameType(op syntax.Token, y starlark.Value, depth int) (bool, error) {
	return starlark.Compare(op, starlark.String(s.s), starlark.String(y.(*Secret).s))
}

// MarshalJSON lets json.encode write a secret: as the marker of its JSON
// form, read back as the sensitive JSON text.
func (s *Secret) MarshalJSON() ([]byte, error) {
	q, err := starlark.Call(&starlark.Thread{}, jsonEncode, starlark.Tuple{starlark.String(s.s)}, nil)
	if err != nil {
		return nil, err
	}
	return []byte(s.tab.marker(string(q.(starlark.String)))), nil
}

// Binary implements +, * and % on secrets, and x in secret.
func (s *Secret) Binary(op syntax.Token, y starlark.Value, side starlark.Side) (starlark.Value, error) {
	switch op {
	case syntax.PLUS:
		return concat(op, s, y, side)
	case syntax.STAR, syntax.PERCENT:
		if op == syntax.PERCENT && side == starlark.Right {
			return nil, nil // "%s" % tok: the format's own, see format.go
		}
		res, err := starlark.Binary(op, starlark.String(s.s), plain(y))
		if err != nil {
			return nil, err
		}
		return s.tab.taint(res)
	case syntax.IN:
		if side == starlark.Right {
			x, ok := plain(y).(starlark.String)
			if !ok {
				return nil, fmt.Errorf("'in <sensitive string>' requires string as left operand, not %s", y.Type())
			}
			return starlark.Bool(strings.Contains(s.s, string(x))), nil
		}
	}
	return nil, nil
}

// Attr returns the string method name, bound to the secret: its
// arguments may be secrets too, and what it returns is tainted.
func (s *Secret) Attr(name string) (starlark.Value, error) {
	m, err := starlark.String(s.s).Attr(name)
	if err != nil || m == nil {
		return m, err
	}
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		pargs := plain(args).(starlark.Tuple)
		pkw := make([]starlark.Tuple, len(kwargs))
		for i, kv := range kwargs {
			pkw[i] = starlark.Tuple{kv[0], plain(kv[1])}
		}
		res, err := starlark.Call(thread, m, pargs, pkw)
		if err != nil {
			return nil, err
		}
		return s.tab.taint(res)
	}), nil
}

// AttrNames lists the string methods.
func (s *Secret) AttrNames() []string { return starlark.String("").AttrNames() }
