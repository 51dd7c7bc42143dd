package builtins

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/imgbuild/imgbuild/engine/value"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// RunTime is a value known only when the run starts, the same for every
// build of the run: timestamp() and run_id(). Evaluation stays hermetic:
// the description never sees the value, the plan shows "(at run:
// timestamp)", and the engine puts the text in when the run starts.
//
// Joined with strings by + it gives a Template ("base-" + timestamp());
// formatted into a string ("%s" % timestamp(), str(), format()) it writes
// "${run:timestamp}", which every keyword reads back as the same value.
type RunTime struct{ v value.RunValue }

var (
	_ starlark.HasBinary = (*RunTime)(nil)
	_ starlark.HasAttrs  = (*RunTime)(nil)
)

func (r *RunTime) String() string        { return runText(r.v) }
func (r *RunTime) Type() string          { return "run value" }
func (r *RunTime) Freeze()               {}
func (r *RunTime) Truth() starlark.Bool  { return starlark.True }
func (r *RunTime) Hash() (uint32, error) { return starlark.String(r.String()).Hash() }

// runText is how a run value is written in a string: "${run:timestamp}",
// which reads back as the same value.
func runText(v value.RunValue) string { return "${run:" + v.String() + "}" }

// Binary joins the value with strings, references and other run values.
func (r *RunTime) Binary(op syntax.Token, y starlark.Value, side starlark.Side) (starlark.Value, error) {
	return concat(op, r, y, side)
}

// Attr offers format(layout) and unix() on timestamp().
func (r *RunTime) Attr(name string) (starlark.Value, error) {
	if r.v.Name != value.RunTimestamp {
		return nil, nil
	}
	switch name {
	case "format":
		return starlark.NewBuiltin("format", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var layout string
			if err := starlark.UnpackPositionalArgs("timestamp().format", args, kwargs, 1, &layout); err != nil {
				return nil, err
			}
			return r.withLayout("timestamp().format", layout)
		}), nil
	case "unix":
		return starlark.NewBuiltin("unix", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			if err := starlark.UnpackPositionalArgs("timestamp().unix", args, kwargs, 0); err != nil {
				return nil, err
			}
			return r.withLayout("timestamp().unix", value.LayoutUnix)
		}), nil
	}
	return nil, nil
}

// AttrNames lists the methods.
func (r *RunTime) AttrNames() []string {
	if r.v.Name != value.RunTimestamp {
		return nil
	}
	return []string{"format", "unix"}
}

func (r *RunTime) withLayout(fn, layout string) (starlark.Value, error) {
	if r.v.Layout != "" {
		return nil, fmt.Errorf("%s: this timestamp is formatted already (%s); format timestamp() itself", fn, r.v)
	}
	if layout == "" {
		return r, nil
	}
	if layout != value.LayoutUnix {
		if err := value.CheckLayout(layout); err != nil {
			return nil, fmt.Errorf("%s: %v (formatdate layouts: YYYY, MM, DD, hh, mm, ss, 'literal text'; see imgbuild docs timestamp)", fn, err)
		}
	}
	return &RunTime{v: value.RunValue{Name: r.v.Name, Layout: layout}}, nil
}

// timestamp() and run_id() take no arguments.
func runValueBuiltin(name string) *starlark.Builtin {
	return starlark.NewBuiltin(name, func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := starlark.UnpackPositionalArgs(name, args, kwargs, 0); err != nil {
			return nil, err
		}
		return &RunTime{v: value.RunValue{Name: name}}, nil
	})
}

// formatdate(layout, time): Packer's function. A timestamp() is formatted
// when the run starts; an RFC 3339 string ("2026-01-02T15:04:05Z") now.
func formatdate(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var layout string
	var t starlark.Value
	if err := starlark.UnpackPositionalArgs("formatdate", args, kwargs, 2, &layout, &t); err != nil {
		return nil, err
	}
	switch t := t.(type) {
	case *RunTime:
		if t.v.Name != value.RunTimestamp {
			return nil, fmt.Errorf("formatdate: got %s, want timestamp() or an RFC 3339 time", t.v)
		}
		return t.withLayout("formatdate", layout)
	case starlark.String:
		at, err := time.Parse(time.RFC3339, string(t))
		if err != nil {
			return nil, fmt.Errorf("formatdate: %q is not an RFC 3339 time such as \"2026-01-02T15:04:05Z\"", string(t))
		}
		s, err := value.FormatTime(at, layout)
		if err != nil {
			return nil, fmt.Errorf("formatdate: %v", err)
		}
		return starlark.String(s), nil
	}
	return nil, fmt.Errorf("formatdate: got %s, want timestamp() or an RFC 3339 time", t.Type())
}

// runMarker finds run values formatted into strings: ${run:timestamp},
// ${run:timestamp.format("YYYY")}, ${run:timestamp.unix()}, ${run:run_id}.
var runMarker = regexp.MustCompile(`\$\{run:(timestamp|run_id)(\.unix\(\)|\.format\(("(?:[^"\\]|\\.)*")\))?\}`)

// runParts splits s into literals and the run values formatted into it.
func runParts(s string) []value.Part {
	var ps []value.Part
	last := 0
	for _, m := range runMarker.FindAllStringSubmatchIndex(s, -1) {
		rv := value.RunValue{Name: s[m[2]:m[3]]}
		switch {
		case m[6] >= 0:
			layout, err := strconv.Unquote(s[m[6]:m[7]])
			if err != nil {
				continue
			}
			rv.Layout = layout
		case m[4] >= 0:
			rv.Layout = value.LayoutUnix
		}
		if rv.Name != value.RunTimestamp && rv.Layout != "" {
			continue
		}
		ps = append(ps, value.Part{Lit: s[last:m[0]]}, value.Part{Run: &rv})
		last = m[1]
	}
	return append(ps, value.Part{Lit: s[last:]})
}
