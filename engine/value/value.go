// Package value is the platform-neutral form of a build's settings.
//
// The Starlark layer turns keyword arguments into these values; the engine
// finds references to other builds' outputs in them (the edges of the
// graph), substitutes the outputs once those builds have run, and the schema
// package decodes the result into a driver's typed config. Nothing here knows
// Starlark or any platform.
//
// value.go is one file of over 500 lines on purpose: it is the list of value
// types with every function that switches over all of them (Walk, Secrets,
// Resolve, MapTemplates, Format, ToJSON, FromGo), so that a new type is
// added in one place and none of the switches can miss it.
package value

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Value is one setting: String, Int, Float, Bool, Null, List, Map, Template
// or Object.
type Value interface {
	// Type names the kind of value as a user would say it ("string", "list").
	Type() string
	isValue()
}

// String is a string value. Sensitive strings come from secret variables and
// are never shown: the plan prints "(sensitive)" and output is redacted.
type String struct {
	S         string
	Sensitive bool
	// Origin, if set, says where the text came from, and the plan shows
	// that with the text's digest instead of the text:
	// read_file("//user-data.yaml") (sha256:1a2b3c4d5e6f).
	Origin string
}

// Int is an integer value.
type Int int64

// Float is a floating-point value.
type Float float64

// Bool is a boolean value.
type Bool bool

// Null is the absent value (Starlark's None).
type Null struct{}

// List is an ordered list of values.
type List []Value

// Map is a string-keyed map that keeps the order its keys were written in.
type Map struct {
	Keys   []string
	Values map[string]Value
}

// Ref names an output of another build: Build "base", Output "image_id".
type Ref struct {
	Build  string
	Output string
}

// String renders the reference the way a user writes it: base.image_id.
func (r Ref) String() string { return r.Build + "." + r.Output }

// Part is one piece of a Template: a literal string, a reference, or a
// value known when the run starts.
type Part struct {
	Lit       string
	Ref       *Ref
	Run       *RunValue
	Sensitive bool // the literal came from a sensitive value
}

// Template is a string not known until the builds it refers to have run,
// or until the run starts: "web-" + base.image_id is the parts "web-" and
// base.image_id; "base-" + timestamp() the parts "base-" and a RunValue. A
// Template holding one Ref and nothing else may resolve to a non-string
// output (a list of files, say).
type Template struct {
	Parts []Part
}

// Object is a structured value made by a builtin other than a builder, such
// as a provisioner (Kind "shell") or a lookup (Kind "aws_ami"). Pos is where
// it was written, as "file:line:col".
type Object struct {
	Kind   string
	Fields Map
	Pos    string
	// Name is what the object was named with name = "..." (a test, a
	// provisioner), "" when it was not; it is no keyword of its schema.
	Name string
}

func (String) isValue()    {}
func (Int) isValue()       {}
func (Float) isValue()     {}
func (Bool) isValue()      {}
func (Null) isValue()      {}
func (List) isValue()      {}
func (*Map) isValue()      {}
func (*Template) isValue() {}
func (*Object) isValue()   {}

// Type implements Value.
func (String) Type() string { return "string" }

// Type implements Value.
func (Int) Type() string { return "int" }

// Type implements Value.
func (Float) Type() string { return "float" }

// Type implements Value.
func (Bool) Type() string { return "bool" }

// Type implements Value.
func (Null) Type() string { return "None" }

// Type implements Value.
func (List) Type() string { return "list" }

// Type implements Value.
func (*Map) Type() string { return "dict" }

// Type implements Value.
func (t *Template) Type() string {
	if r := t.SoleRef(); r != nil {
		return "output " + r.String()
	}
	if len(t.Refs()) == 0 {
		return "string known at run time"
	}
	return "string built from outputs"
}

// Type implements Value.
func (o *Object) Type() string { return o.Kind + "()" }

// NewMap returns an empty Map.
func NewMap() *Map { return &Map{Values: map[string]Value{}} }

// Set stores v under k, keeping the first insertion's position.
func (m *Map) Set(k string, v Value) {
	if m.Values == nil {
		m.Values = map[string]Value{}
	}
	if _, ok := m.Values[k]; !ok {
		m.Keys = append(m.Keys, k)
	}
	m.Values[k] = v
}

// Get returns the value under k and whether it was set.
func (m *Map) Get(k string) (Value, bool) {
	if m == nil {
		return nil, false
	}
	v, ok := m.Values[k]
	return v, ok
}

// Len is the number of keys.
func (m *Map) Len() int {
	if m == nil {
		return 0
	}
	return len(m.Keys)
}

// SoleRef returns the reference when the template is exactly one reference.
func (t *Template) SoleRef() *Ref {
	if len(t.Parts) == 1 && t.Parts[0].Ref != nil {
		return t.Parts[0].Ref
	}
	return nil
}

// Refs returns the references in t, in order.
func (t *Template) Refs() []Ref {
	var out []Ref
	for _, p := range t.Parts {
		if p.Ref != nil {
			out = append(out, *p.Ref)
		}
	}
	return out
}

// Ref is one reference found in a value tree, with the path of keywords that
// leads to it ("source_ami", "provisioners[1].env.VERSION").
type FoundRef struct {
	Path string
	Ref  Ref
}

// Walk calls fn for every reference in v; path names where v sits.
func Walk(path string, v Value, fn func(FoundRef)) {
	walkLeaves(path, v, func(path string, leaf Value) {
		if t, ok := leaf.(*Template); ok {
			for _, r := range t.Refs() {
				fn(FoundRef{Path: path, Ref: r})
			}
		}
	})
}

// walkLeaves calls fn for every value in v that is not a list, a dict or an
// object (v itself when it is none of them), with the path that leads to it
// from path, as Walk names it.
func walkLeaves(path string, v Value, fn func(path string, leaf Value)) {
	switch v := v.(type) {
	case List:
		for i, e := range v {
			walkLeaves(path+"["+strconv.Itoa(i)+"]", e, fn)
		}
	case *Map:
		for _, k := range v.Keys {
			walkLeaves(join(path, k), v.Values[k], fn)
		}
	case *Object:
		walkLeaves(path, &v.Fields, fn)
	default:
		fn(path, v)
	}
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// Secrets calls fn with every sensitive string in v.
func Secrets(v Value, fn func(string)) {
	walkLeaves("", v, func(_ string, leaf Value) {
		switch leaf := leaf.(type) {
		case String:
			if leaf.Sensitive {
				fn(leaf.S)
			}
		case *Template:
			for _, p := range leaf.Parts {
				if p.Sensitive {
					fn(p.Lit)
				}
			}
		}
	})
}

// Resolver returns the value of a build's output.
type Resolver func(Ref) (Value, error)

// Resolve returns v with every reference replaced by its value.
func Resolve(v Value, get Resolver) (Value, error) {
	return MapTemplates(v, func(v *Template) (Value, error) {
		if r := v.SoleRef(); r != nil {
			return get(*r)
		}
		var b strings.Builder
		sensitive := false
		for _, p := range v.Parts {
			if p.Run != nil {
				return nil, fmt.Errorf("%s is not resolved: the engine resolves run values when the run starts (ResolveRun)", p.Run)
			}
			if p.Ref == nil {
				b.WriteString(p.Lit)
				sensitive = sensitive || p.Sensitive
				continue
			}
			out, err := get(*p.Ref)
			if err != nil {
				return nil, err
			}
			s, ok := out.(String)
			if !ok {
				return nil, fmt.Errorf("output %s is a %s and cannot be joined into a string", p.Ref, out.Type())
			}
			b.WriteString(s.S)
			sensitive = sensitive || s.Sensitive
		}
		return String{S: b.String(), Sensitive: sensitive}, nil
	})
}

// MapTemplates returns a copy of v with every template replaced by what fn
// makes of it.
func MapTemplates(v Value, fn func(*Template) (Value, error)) (Value, error) {
	switch v := v.(type) {
	case *Template:
		return fn(v)
	case List:
		out := make(List, len(v))
		for i, e := range v {
			r, err := MapTemplates(e, fn)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case *Map:
		out := NewMap()
		for _, k := range v.Keys {
			r, err := MapTemplates(v.Values[k], fn)
			if err != nil {
				return nil, err
			}
			out.Set(k, r)
		}
		return out, nil
	case *Object:
		m, err := MapTemplates(&v.Fields, fn)
		if err != nil {
			return nil, err
		}
		return &Object{Kind: v.Kind, Fields: *m.(*Map), Pos: v.Pos, Name: v.Name}, nil
	}
	return v, nil
}

// Format renders v for the plan: strings quoted, references bare, sensitive
// values as (sensitive).
func Format(v Value) string { return FormatWith(v, Formatting{}) }

// Formatting changes how FormatWith shows what the plan hides or
// abbreviates.
type Formatting struct {
	// Secret, if set, is what a sensitive text shows as (a keyed digest,
	// for fingerprints); nil means "(sensitive)".
	Secret func(text string) string
	// Origin, if set, is what a text read from a file shows as; nil means
	// its origin and a short digest: read_file("//x") (sha256:1a2b3c4d5e6f).
	Origin func(s String) string
}

// FormatWith renders v as Format does, with f's replacements.
func FormatWith(v Value, f Formatting) string {
	var b strings.Builder
	format(&b, v, &f)
	return b.String()
}

func (f *Formatting) secret(text string) string {
	if f.Secret == nil {
		return "(sensitive)"
	}
	return f.Secret(text)
}

func format(b *strings.Builder, v Value, f *Formatting) {
	switch v := v.(type) {
	case String:
		switch {
		case v.Sensitive:
			b.WriteString(f.secret(v.S))
		case v.Origin != "" && f.Origin != nil:
			b.WriteString(f.Origin(v))
		case v.Origin != "":
			sum := sha256.Sum256([]byte(v.S))
			b.WriteString(v.Origin + " (sha256:" + hex.EncodeToString(sum[:6]) + ")")
		default:
			b.WriteString(strconv.Quote(v.S))
		}
	case Int:
		b.WriteString(strconv.FormatInt(int64(v), 10))
	case Float:
		b.WriteString(strconv.FormatFloat(float64(v), 'g', -1, 64))
	case Bool:
		if v {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case Null:
		b.WriteString("None")
	case List:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			format(b, e, f)
		}
		b.WriteByte(']')
	case *Map:
		b.WriteByte('{')
		for i, k := range v.Keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(k))
			b.WriteString(": ")
			format(b, v.Values[k], f)
		}
		b.WriteByte('}')
	case *Template:
		for i, p := range v.Parts {
			if i > 0 {
				b.WriteString(" + ")
			}
			switch {
			case p.Ref != nil:
				b.WriteString(p.Ref.String())
			case p.Run != nil:
				b.WriteString(p.Run.Shown())
			case p.Sensitive:
				b.WriteString(f.secret(p.Lit))
			default:
				b.WriteString(strconv.Quote(p.Lit))
			}
		}
	case *Object:
		b.WriteString(v.Kind)
		b.WriteByte('(')
		for i, k := range v.Fields.Keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k)
			b.WriteString(" = ")
			format(b, v.Fields.Values[k], f)
		}
		b.WriteByte(')')
	}
}

// PartsText writes a template's parts as one text: a reference as
// "${build.output}", a run value as run gives it, a sensitive literal as
// sensitive gives it and any other literal as it is.
func PartsText(parts []Part, run func(RunValue) string, sensitive func(lit string) string) string {
	var b strings.Builder
	for _, p := range parts {
		switch {
		case p.Ref != nil:
			b.WriteString("${" + p.Ref.String() + "}")
		case p.Run != nil:
			b.WriteString(run(*p.Run))
		case p.Sensitive:
			b.WriteString(sensitive(p.Lit))
		default:
			b.WriteString(p.Lit)
		}
	}
	return b.String()
}

// ToJSON converts v into plain Go data for encoding/json: sensitive strings
// become "(sensitive)", references "${build.output}", run values "(at run:
// timestamp)".
func ToJSON(v Value) any {
	switch v := v.(type) {
	case String:
		if v.Sensitive {
			return "(sensitive)"
		}
		return v.S
	case Int:
		return int64(v)
	case Float:
		return float64(v)
	case Bool:
		return bool(v)
	case Null:
		return nil
	case List:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = ToJSON(e)
		}
		return out
	case *Map:
		out := make(map[string]any, len(v.Keys))
		for _, k := range v.Keys {
			out[k] = ToJSON(v.Values[k])
		}
		return out
	case *Template:
		return PartsText(v.Parts, RunValue.Shown, func(string) string { return "(sensitive)" })
	case *Object:
		m := ToJSON(&v.Fields).(map[string]any)
		m["kind"] = v.Kind
		return m
	}
	return nil
}

// FromGo converts plain Go data (string, bool, ints, floats, []string,
// []any, map[string]string, map[string]any) into a Value; map keys are
// sorted. It is how artifacts' fields become values that refs resolve to.
func FromGo(x any) Value {
	switch x := x.(type) {
	case nil:
		return Null{}
	case Value:
		return x
	case string:
		return String{S: x}
	case bool:
		return Bool(x)
	case int:
		return Int(x)
	case int64:
		return Int(x)
	case float64:
		return Float(x)
	case []string:
		out := make(List, len(x))
		for i, s := range x {
			out[i] = String{S: s}
		}
		return out
	case []any:
		out := make(List, len(x))
		for i, e := range x {
			out[i] = FromGo(e)
		}
		return out
	case map[string]string:
		m := NewMap()
		for _, k := range slices.Sorted(maps.Keys(x)) {
			m.Set(k, String{S: x[k]})
		}
		return m
	case map[string]any:
		m := NewMap()
		for _, k := range slices.Sorted(maps.Keys(x)) {
			m.Set(k, FromGo(x[k]))
		}
		return m
	}
	return String{S: fmt.Sprint(x)}
}
