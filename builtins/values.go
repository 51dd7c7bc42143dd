package builtins

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Handle is what a builder call returns: the build, whose attributes are
// its outputs (base.image_id), known only once it has run.
type Handle struct {
	node *engine.Node
	def  *engine.BuilderDef
}

var (
	_ starlark.HasAttrs  = (*Handle)(nil)
	_ starlark.HasBinary = (*Ref)(nil)
	_ starlark.HasBinary = (*Template)(nil)
	_ starlark.HasBinary = (*Secret)(nil)
)

// Name is the build's name.
func (h *Handle) Name() string { return h.node.Name }

func (h *Handle) String() string        { return fmt.Sprintf("<%s build %q>", h.node.Driver, h.node.Name) }
func (h *Handle) Type() string          { return "build" }
func (h *Handle) Freeze()               {}
func (h *Handle) Truth() starlark.Bool  { return starlark.True }
func (h *Handle) Hash() (uint32, error) { return starlark.String(h.node.Name).Hash() }

// Attr returns the output reference for name, or the build's name.
func (h *Handle) Attr(name string) (starlark.Value, error) {
	if name == "name" {
		return starlark.String(h.node.Name), nil
	}
	if h.def.HasOutput(name) {
		return &Ref{ref: value.Ref{Build: h.node.Name, Output: name}}, nil
	}
	msg := fmt.Sprintf("%s build %q has no output %q", h.node.Driver, h.node.Name, name)
	if near := schema.Nearest(name, h.AttrNames()); near != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", near)
	}
	return nil, fmt.Errorf("%s; its outputs are %s", msg, strings.Join(h.AttrNames(), ", "))
}

// AttrNames lists the build's outputs.
func (h *Handle) AttrNames() []string {
	var out []string
	for _, o := range h.def.AllOutputs() {
		out = append(out, o.Name)
	}
	sort.Strings(out)
	return out
}

// Ref is one output of a build, not known until that build has run. Passing
// it to another builder adds an edge to the graph. Joining it with strings
// by + gives a Template; formatting it into a string writes "${build.out}",
// which is read back as the same reference.
type Ref struct{ ref value.Ref }

func (r *Ref) String() string        { return "${" + r.ref.String() + "}" }
func (r *Ref) Type() string          { return "output" }
func (r *Ref) Freeze()               {}
func (r *Ref) Truth() starlark.Bool  { return starlark.True }
func (r *Ref) Hash() (uint32, error) { return starlark.String(r.String()).Hash() }

// Binary joins the reference with strings, references and secrets.
func (r *Ref) Binary(op syntax.Token, y starlark.Value, side starlark.Side) (starlark.Value, error) {
	return concat(op, r, y, side)
}

// Template is a string built from literals and outputs of other builds.
type Template struct{ parts []value.Part }

// String writes references as "${build.output}" and run values as
// "${run:timestamp}", which read back as the same template.
func (t *Template) String() string {
	var b strings.Builder
	for _, p := range t.parts {
		switch {
		case p.Ref != nil:
			b.WriteString("${" + p.Ref.String() + "}")
		case p.Run != nil:
			b.WriteString((&RunTime{v: *p.Run}).String())
		case p.Sensitive:
			b.WriteString("(sensitive)")
		default:
			b.WriteString(p.Lit)
		}
	}
	return b.String()
}
func (t *Template) Type() string          { return "output string" }
func (t *Template) Freeze()               {}
func (t *Template) Truth() starlark.Bool  { return starlark.True }
func (t *Template) Hash() (uint32, error) { return starlark.String(t.String()).Hash() }

// Binary joins the template with strings, references and secrets.
func (t *Template) Binary(op syntax.Token, y starlark.Value, side starlark.Side) (starlark.Value, error) {
	return concat(op, t, y, side)
}

// Secret is a sensitive string: it prints as "(sensitive)" and is never
// shown in the plan, the output, the logs or a manifest. It can be joined
// with strings by +; other string operations are not available on it, so
// that no derived copy escapes redaction.
type Secret struct{ s string }

func (s *Secret) String() string        { return "(sensitive)" }
func (s *Secret) Type() string          { return "sensitive string" }
func (s *Secret) Freeze()               {}
func (s *Secret) Truth() starlark.Bool  { return s.s != "" }
func (s *Secret) Hash() (uint32, error) { return starlark.String(s.s).Hash() }

// Binary joins the secret with strings, references and other secrets.
func (s *Secret) Binary(op syntax.Token, y starlark.Value, side starlark.Side) (starlark.Value, error) {
	return concat(op, s, y, side)
}

// parts returns x as template parts, if it is a string-like value.
func parts(x starlark.Value) ([]value.Part, bool) {
	switch x := x.(type) {
	case starlark.String:
		return []value.Part{{Lit: string(x)}}, true
	case *Secret:
		return []value.Part{{Lit: x.s, Sensitive: true}}, true
	case *Ref:
		r := x.ref
		return []value.Part{{Ref: &r}}, true
	case *Template:
		return x.parts, true
	case *RunTime:
		rv := x.v
		return []value.Part{{Run: &rv}}, true
	}
	return nil, false
}

func concat(op syntax.Token, x, y starlark.Value, side starlark.Side) (starlark.Value, error) {
	if op != syntax.PLUS {
		return nil, nil
	}
	yp, ok := parts(y)
	if !ok {
		return nil, nil
	}
	xp, _ := parts(x)
	if side == starlark.Right {
		xp, yp = yp, xp
	}
	all := mergeParts(append(append([]value.Part(nil), xp...), yp...))
	hasRef, sensitive := false, false
	for _, p := range all {
		hasRef = hasRef || p.Ref != nil || p.Run != nil
		sensitive = sensitive || p.Sensitive
	}
	if !hasRef {
		// Only strings and secrets: the result is a secret.
		var b strings.Builder
		for _, p := range all {
			b.WriteString(p.Lit)
		}
		return &Secret{s: b.String()}, nil
	}
	return &Template{parts: all}, nil
}

// mergeParts joins adjacent literals of the same sensitivity and drops
// empty ones.
func mergeParts(ps []value.Part) []value.Part {
	var out []value.Part
	for _, p := range ps {
		lit := p.Ref == nil && p.Run == nil
		if lit && p.Lit == "" {
			continue
		}
		if n := len(out); n > 0 && lit && out[n-1].Ref == nil && out[n-1].Run == nil && out[n-1].Sensitive == p.Sensitive {
			out[n-1].Lit += p.Lit
			continue
		}
		out = append(out, p)
	}
	return out
}

// StepValue is a provisioner or post-processor: a plain value that does
// nothing until a build uses it.
type StepValue struct {
	obj  *value.Object
	post bool
}

func (s *StepValue) String() string { return value.Format(s.obj) }
func (s *StepValue) Type() string {
	if s.post {
		return "post-processor"
	}
	return "provisioner"
}
func (s *StepValue) Freeze()               {}
func (s *StepValue) Truth() starlark.Bool  { return starlark.True }
func (s *StepValue) Hash() (uint32, error) { return starlark.String(s.String()).Hash() }

// LookupValue is a lookup such as aws_ami(...): found at run time, given
// to a keyword that accepts it.
type LookupValue struct{ obj *value.Object }

func (l *LookupValue) String() string        { return value.Format(l.obj) }
func (l *LookupValue) Type() string          { return "lookup" }
func (l *LookupValue) Freeze()               {}
func (l *LookupValue) Truth() starlark.Bool  { return starlark.True }
func (l *LookupValue) Hash() (uint32, error) { return starlark.String(l.String()).Hash() }

// refPattern finds "${build.output}" written into strings by formatting
// (the way a Ref prints itself).
var refPattern = regexp.MustCompile(`\$\{([A-Za-z0-9][A-Za-z0-9_.-]*)\.([a-z_][a-z0-9_]*)\}`)

// convert turns a Starlark value into a setting value. known reports
// whether a build exists, for reading "${build.output}" back from strings.
func convert(v starlark.Value, known func(build string) bool) (value.Value, error) {
	switch v := v.(type) {
	case starlark.NoneType:
		return value.Null{}, nil
	case starlark.String:
		return stringValue(string(v), known), nil
	case *Secret:
		return value.String{S: v.s, Sensitive: true}, nil
	case *Ref:
		r := v.ref
		return &value.Template{Parts: []value.Part{{Ref: &r}}}, nil
	case *Template:
		return &value.Template{Parts: v.parts}, nil
	case *RunTime:
		rv := v.v
		return &value.Template{Parts: []value.Part{{Run: &rv}}}, nil
	case starlark.Bool:
		return value.Bool(v), nil
	case starlark.Int:
		n, ok := v.Int64()
		if !ok {
			return nil, fmt.Errorf("%s is too large", v)
		}
		return value.Int(n), nil
	case starlark.Float:
		return value.Float(v), nil
	case *starlark.List:
		return convertSeq(v, known)
	case starlark.Tuple:
		return convertSeq(v, known)
	case *starlark.Dict:
		m := value.NewMap()
		for _, item := range v.Items() {
			k, ok := item[0].(starlark.String)
			if !ok {
				return nil, fmt.Errorf("dict keys must be strings, got %s", item[0].Type())
			}
			ev, err := convert(item[1], known)
			if err != nil {
				return nil, fmt.Errorf("key %q: %v", string(k), err)
			}
			m.Set(string(k), ev)
		}
		return m, nil
	case *StepValue:
		return v.obj, nil
	case *LookupValue:
		return v.obj, nil
	case *Handle:
		return nil, fmt.Errorf("got the build %q itself; pass one of its outputs (%s.%s) or list it in depends_on", v.Name(), v.Name(), v.AttrNames()[0])
	}
	return nil, fmt.Errorf("a %s cannot be a setting", v.Type())
}

func convertSeq(seq starlark.Indexable, known func(string) bool) (value.Value, error) {
	out := make(value.List, seq.Len())
	for i := range out {
		ev, err := convert(seq.Index(i), known)
		if err != nil {
			return nil, fmt.Errorf("element %d: %v", i, err)
		}
		out[i] = ev
	}
	return out, nil
}

// stringValue reads "${build.output}" references (of known builds) and
// "${run:timestamp}" run values back out of a string made by formatting.
func stringValue(s string, known func(string) bool) value.Value {
	if !strings.Contains(s, "${") {
		return value.String{S: s}
	}
	var ps []value.Part
	for _, p := range runParts(s) {
		if p.Run != nil {
			ps = append(ps, p)
			continue
		}
		ps = append(ps, refParts(p.Lit, known)...)
	}
	ps = mergeParts(ps)
	if len(ps) == 1 && ps[0].Ref == nil && ps[0].Run == nil {
		return value.String{S: ps[0].Lit}
	}
	if len(ps) == 0 {
		return value.String{}
	}
	return &value.Template{Parts: ps}
}

// refParts splits s into literals and references to known builds' outputs.
func refParts(s string, known func(string) bool) []value.Part {
	if known == nil {
		return []value.Part{{Lit: s}}
	}
	var ps []value.Part
	last := 0
	for _, l := range refPattern.FindAllStringSubmatchIndex(s, -1) {
		build, out := s[l[2]:l[3]], s[l[4]:l[5]]
		if !known(build) {
			continue
		}
		ps = append(ps, value.Part{Lit: s[last:l[0]]}, value.Part{Ref: &value.Ref{Build: build, Output: out}})
		last = l[1]
	}
	return append(ps, value.Part{Lit: s[last:]})
}

func nearest(name string, candidates []string) string { return schema.Nearest(name, candidates) }
