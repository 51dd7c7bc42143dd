package builtins

import (
	stdjson "encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
)

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// EnvPrefix is the prefix of environment variables that set description
// variables: IMGBUILD_VAR_version sets var("version").
const EnvPrefix = "IMGBUILD_VAR_"

// var(name, default = ?, description = "", sensitive = False, validation = None)
func (r *Recorder) varBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		name, description string
		def               starlark.Value
		sensitive         bool
		validation        starlark.Callable
	)
	if len(args) > 1 {
		return nil, fmt.Errorf("var: only the name may be positional, like var(\"version\", default = \"dev\")")
	}
	if err := starlark.UnpackArgs("var", args, kwargs,
		"name", &name, "default?", &def, "description?", &description,
		"sensitive?", &sensitive, "validation??", &validation); err != nil {
		return nil, withSuggestion(err, []string{"name", "default", "description", "sensitive", "validation"})
	}
	if !varName.MatchString(name) {
		return nil, fmt.Errorf("var: %q is not a valid variable name (letters, digits and _, not starting with a digit)", name)
	}
	pos := callPos(thread)
	if prev, ok := r.vars[name]; ok {
		if prev.sensitive != sensitive {
			return nil, fmt.Errorf("var: variable %q is declared again with a different sensitive setting (first at %s)", name, prev.pos)
		}
		return prev.value, nil
	}
	v, source, err := r.varValue(name, def)
	if err != nil {
		return nil, err
	}
	if validation != nil {
		res, err := starlark.Call(thread, validation, starlark.Tuple{v}, nil)
		if err != nil {
			return nil, fmt.Errorf("var: validation of %q failed: %v", name, err)
		}
		shown := v.String()
		if sensitive {
			shown = "(sensitive)"
		}
		switch res := res.(type) {
		case starlark.Bool:
			if !res {
				return nil, fmt.Errorf("var: variable %q: value %s (from %s) is not valid", name, shown, source)
			}
		case starlark.String:
			if res != "" {
				return nil, fmt.Errorf("var: variable %q: value %s (from %s) is not valid: %s", name, shown, source, string(res))
			}
		case starlark.NoneType:
		default:
			return nil, fmt.Errorf("var: validation of %q returned %s; it should return True, False or an error message", name, res.Type())
		}
	}
	if sensitive {
		s, ok := v.(starlark.String)
		if !ok {
			return nil, fmt.Errorf("var: sensitive variable %q must be a string, got %s", name, v.Type())
		}
		v = &Secret{s: string(s)}
	}
	r.vars[name] = &declaredVar{name: name, description: description, pos: pos, value: v, sensitive: sensitive}
	r.order = append(r.order, name)
	return v, nil
}

func withSuggestion(err error, valid []string) error {
	msg := err.Error()
	const marker = "unexpected keyword argument \""
	if i := strings.Index(msg, marker); i >= 0 {
		kw := msg[i+len(marker):]
		kw = kw[:strings.IndexByte(kw, '"')]
		if near := nearest(kw, valid); near != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", near)
		}
	}
	return fmt.Errorf("%s", msg)
}

// varValue finds the value of a variable: given from outside, then the
// environment, then the default.
func (r *Recorder) varValue(name string, def starlark.Value) (starlark.Value, string, error) {
	if given, ok := r.opts.Vars[name]; ok {
		if given.JSON != nil {
			v, err := fromJSON(given.JSON)
			if err != nil {
				return nil, "", fmt.Errorf("var: %s: variable %q: %v", given.Source, name, err)
			}
			return v, given.Source, nil
		}
		v, err := parseAs(given.Raw, def)
		if err != nil {
			return nil, "", fmt.Errorf("var: %s: variable %q: %v", given.Source, name, err)
		}
		return v, given.Source, nil
	}
	if r.opts.Getenv != nil {
		if raw, ok := r.opts.Getenv(EnvPrefix + name); ok {
			v, err := parseAs(raw, def)
			if err != nil {
				return nil, "", fmt.Errorf("var: %s%s: variable %q: %v", EnvPrefix, name, name, err)
			}
			return v, EnvPrefix + name, nil
		}
	}
	if def == nil {
		return nil, "", fmt.Errorf("var: variable %q is required but not set: pass --var %s=..., put it in a --var-file, set %s%s, or give it a default", name, name, EnvPrefix, name)
	}
	return def, "its default", nil
}

// parseAs converts a command-line string to the type of the default.
func parseAs(raw string, def starlark.Value) (starlark.Value, error) {
	switch def.(type) {
	case nil, starlark.String, starlark.NoneType:
		return starlark.String(raw), nil
	case starlark.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return nil, fmt.Errorf("%q is not a bool (the default is a bool): write true or false", raw)
		}
		return starlark.Bool(b), nil
	case starlark.Int:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an int (the default is an int)", raw)
		}
		return starlark.MakeInt64(n), nil
	case starlark.Float:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a float (the default is a float)", raw)
		}
		return starlark.Float(f), nil
	}
	var x any
	if err := stdjson.Unmarshal([]byte(raw), &x); err != nil {
		return nil, fmt.Errorf("%q is not JSON (the default is a %s, so write it as JSON): %v", raw, def.Type(), err)
	}
	return fromJSON(x)
}

// fromJSON converts decoded JSON into Starlark values.
func fromJSON(x any) (starlark.Value, error) {
	switch x := x.(type) {
	case nil, stdjson.RawMessage:
		return starlark.None, nil
	case bool:
		return starlark.Bool(x), nil
	case string:
		return starlark.String(x), nil
	case float64:
		if x == float64(int64(x)) {
			return starlark.MakeInt64(int64(x)), nil
		}
		return starlark.Float(x), nil
	case stdjson.Number:
		if n, err := x.Int64(); err == nil {
			return starlark.MakeInt64(n), nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("%s is not a number imgbuild can hold", x)
		}
		return starlark.Float(f), nil
	case []any:
		out := make([]starlark.Value, len(x))
		for i, e := range x {
			v, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return starlark.NewList(out), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := starlark.NewDict(len(x))
		for _, k := range keys {
			v, err := fromJSON(x[k])
			if err != nil {
				return nil, err
			}
			_ = d.SetKey(starlark.String(k), v)
		}
		return d, nil
	}
	return nil, fmt.Errorf("unsupported value %T", x)
}
