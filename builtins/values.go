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
	outs *engine.BuildOutputs // its builder's and its post-processors'
}

var (
	_ starlark.HasAttrs  = (*Handle)(nil)
	_ starlark.HasBinary = (*Ref)(nil)
	_ starlark.HasBinary = (*Template)(nil)
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
	if h.outs.Has(name) {
		if err := h.outs.Check(name); err != nil {
			return nil, err
		}
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
	out := h.outs.Names()
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

// Template is a string built from literals and outputs of other builds;
// some literals may be sensitive.
type Template struct {
	parts []value.Part
	tab   *sensitive
}

// String writes references as "${build.output}", run values as
// "${run:timestamp}" and sensitive parts as their markers, which read back
// as the same template.
func (t *Template) String() string {
	return value.PartsText(t.parts, runText, func(lit string) string {
		if t.tab != nil {
			return t.tab.marker(lit)
		}
		return "(sensitive)"
	})
}
func (t *Template) Type() string          { return "output string" }
func (t *Template) Freeze()               {}
func (t *Template) Truth() starlark.Bool  { return starlark.True }
func (t *Template) Hash() (uint32, error) { return starlark.String(t.String()).Hash() }

// Binary joins the template with strings, references and secrets.
func (t *Template) Binary(op syntax.Token, y starlark.Value, side starlark.Side) (starlark.Value, error) {
	return concat(op, t, y, side)
}

// parts returns x as template parts, if it is a string-like value, and
// the sensitive table it carries.
func parts(x starlark.Value) ([]value.Part, *sensitive, bool) {
	switch x := x.(type) {
	case starlark.String:
		return []value.Part{{Lit: string(x)}}, nil, true
	case *Secret:
		return []value.Part{{Lit: x.s, Sensitive: true}}, x.tab, true
	case *Ref:
		r := x.ref
		return []value.Part{{Ref: &r}}, nil, true
	case *Template:
		return x.parts, x.tab, true
	case *RunTime:
		rv := x.v
		return []value.Part{{Run: &rv}}, nil, true
	case *FileText:
		return []value.Part{{Lit: x.text}}, nil, true
	}
	return nil, nil, false
}

func concat(op syntax.Token, x, y starlark.Value, side starlark.Side) (starlark.Value, error) {
	if op != syntax.PLUS {
		return nil, nil
	}
	yp, ytab, ok := parts(y)
	if !ok {
		return nil, nil
	}
	xp, tab, _ := parts(x)
	if tab == nil {
		tab = ytab
	}
	if side == starlark.Right {
		xp, yp = yp, xp
	}
	all := mergeParts(append(append([]value.Part(nil), xp...), yp...))
	if tab == nil {
		// Only strings and references.
		return &Template{parts: all}, nil
	}
	return tab.fromParts(all), nil
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

// convert turns a Starlark value into a setting value. Strings are read
// back through tab: "${build.output}" of known builds and the markers of
// sensitive values.
func convert(v starlark.Value, tab *sensitive) (value.Value, error) {
	switch v := v.(type) {
	case starlark.NoneType:
		return value.Null{}, nil
	case starlark.String:
		return tab.setting(string(v))
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
	case *FileText:
		return v.setting(tab)
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
		return convertSeq(v, tab)
	case starlark.Tuple:
		return convertSeq(v, tab)
	case *starlark.Dict:
		m := value.NewMap()
		for _, item := range v.Items() {
			k, ok := item[0].(starlark.String)
			if !ok {
				return nil, fmt.Errorf("dict keys must be strings, got %s", item[0].Type())
			}
			ev, err := convert(item[1], tab)
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

func convertSeq(seq starlark.Indexable, tab *sensitive) (value.Value, error) {
	out := make(value.List, seq.Len())
	for i := range out {
		ev, err := convert(seq.Index(i), tab)
		if err != nil {
			return nil, fmt.Errorf("element %d: %v", i, err)
		}
		out[i] = ev
	}
	return out, nil
}
