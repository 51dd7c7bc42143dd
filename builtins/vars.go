package builtins

import (
	stdjson "encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"go.starlark.net/starlark"

	"github.com/imgbuild/imgbuild/engine/schema"
)

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// EnvPrefix is the prefix of environment variables that set description
// variables: IMGBUILD_VAR_version sets var("version").
const EnvPrefix = "IMGBUILD_VAR_"

// var(name, default = ?, type = None, description = "", sensitive = False,
// validation = None, env = None)
func (r *Recorder) varBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		name, description, typeName, env string
		def                              starlark.Value
		sensitive                        bool
		validation                       starlark.Callable
	)
	if len(args) > 1 {
		return nil, fmt.Errorf("var: only the name may be positional, like var(\"version\", default = \"dev\")")
	}
	if err := starlark.UnpackArgs("var", args, kwargs,
		"name", &name, "default?", &def, "type??", &typeName, "description?", &description,
		"sensitive?", &sensitive, "validation??", &validation, "env??", &env); err != nil {
		return nil, withSuggestion(err, []string{"name", "default", "type", "description", "sensitive", "validation", "env"})
	}
	if !varName.MatchString(name) {
		return nil, fmt.Errorf("var: %q is not a valid variable name (letters, digits and _, not starting with a digit)", name)
	}
	if env != "" && !envName.MatchString(env) {
		return nil, fmt.Errorf("var: for parameter env: %q is not an environment variable's name (letters, digits and _)", env)
	}
	pos := callPos(thread)
	if prev, ok := r.vars[name]; ok {
		if prev.sensitive != sensitive {
			return nil, fmt.Errorf("var: variable %q is declared again with a different sensitive setting (first at %s)", name, prev.pos)
		}
		return prev.value, nil
	}
	typ := typeOfDefault(def)
	if typeName != "" {
		var err error
		if typ, err = parseVarType(typeName); err != nil {
			return nil, fmt.Errorf("var: for parameter type: %v", err)
		}
		if def != nil {
			// The default is converted too, as Packer does ("2" for a number is 2).
			data, err := toJSON(def)
			if err == nil {
				def, err = typ.convert(data)
			}
			if err != nil {
				return nil, fmt.Errorf("var: the default of %q: %v", name, err)
			}
		}
	}
	if sensitive {
		// A sensitive value is a string (a Secret); one of another type
		// could not stay hidden.
		if typ.kind != "string" && typ.kind != "any" {
			from := "its type"
			if typ.fromDefault {
				from = "its default"
			}
			return nil, fmt.Errorf("var: sensitive variable %q must be a string, not %s (%s)", name, typ.String(), from)
		}
		typ = &varType{kind: "string", fromDefault: typ.fromDefault}
	}
	decl := &declaredVar{name: name, description: description, pos: pos, sensitive: sensitive, env: env}
	v, err := r.varValue(decl, def, typ)
	if err != nil {
		return nil, err
	}
	shown := v.String()
	if sensitive {
		// From here on the value is a Secret: the validation, and whatever
		// it keeps, sees a sensitive string, never a plain copy.
		s, ok := v.(starlark.String)
		if !ok {
			return nil, fmt.Errorf("var: sensitive variable %q must be a string, got %s (from %s)", name, v.Type(), decl.source)
		}
		v = r.sens.declare(string(s))
		shown = "(sensitive)"
	}
	if validation != nil {
		res, err := starlark.Call(thread, validation, starlark.Tuple{v}, nil)
		if err != nil {
			return nil, fmt.Errorf("var: validation of %q failed: %v", name, err)
		}
		switch res := res.(type) {
		case starlark.Bool:
			if !res {
				return nil, fmt.Errorf("var: variable %q: value %s (from %s) is not valid", name, shown, decl.source)
			}
		case starlark.String:
			if res != "" {
				return nil, fmt.Errorf("var: variable %q: value %s (from %s) is not valid: %s", name, shown, decl.source, string(res))
			}
		case *Secret:
			// A message made from the value: shown, but as (sensitive).
			if res.s != "" {
				return nil, fmt.Errorf("var: variable %q: value %s (from %s) is not valid: %s", name, shown, decl.source, res)
			}
		case starlark.NoneType:
		default:
			return nil, fmt.Errorf("var: validation of %q returned %s; it should return True, False or an error message", name, res.Type())
		}
	}
	decl.value = v
	r.vars[name] = decl
	r.order = append(r.order, name)
	return v, nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func withSuggestion(err error, valid []string) error {
	msg := err.Error()
	const marker = "unexpected keyword argument \""
	if i := strings.Index(msg, marker); i >= 0 {
		kw := msg[i+len(marker):]
		kw = kw[:strings.IndexByte(kw, '"')]
		if near := schema.Nearest(kw, valid); near != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", near)
		}
	}
	return fmt.Errorf("%s", msg)
}

// varValue finds the value of a variable, converted to its type: given on
// the command line or in a var-file, then IMGBUILD_VAR_<name>, then the
// environment variable env = names (when set and not empty), then the
// default. It records in d where the value came from.
func (r *Recorder) varValue(d *declaredVar, def starlark.Value, typ *varType) (starlark.Value, error) {
	name := d.name
	if given, ok := r.opts.Vars[name]; ok {
		d.source = given.Source
		if d.sensitive {
			// Hidden from here on, also in the messages of a failed
			// conversion.
			r.sens.set.Add(given.Raw)
			if s, ok := given.JSON.(string); ok {
				r.sens.set.Add(s)
			}
		}
		var v starlark.Value
		var err error
		if given.JSON != nil {
			v, err = typ.convert(given.JSON)
		} else {
			v, err = typ.fromRaw(given.Raw)
		}
		if err != nil {
			where := given.Source
			if given.Pos != "" {
				where = given.Pos
			}
			return nil, fmt.Errorf("var: %s: variable %q: %v", where, name, err)
		}
		return v, nil
	}
	if r.opts.Getenv != nil {
		for _, env := range []string{EnvPrefix + name, d.env} {
			if env == "" {
				continue
			}
			raw, ok := r.opts.Getenv(env)
			if !ok || (raw == "" && env == d.env) {
				continue
			}
			if d.sensitive {
				r.sens.set.Add(raw)
			}
			v, err := typ.fromRaw(raw)
			if err != nil {
				return nil, fmt.Errorf("var: $%s: variable %q: %v", env, name, err)
			}
			d.source, d.fromEnv = "$"+env, env == d.env
			return v, nil
		}
	}
	if def == nil {
		hint := ""
		if d.env != "" {
			hint = " or $" + d.env
		}
		return nil, fmt.Errorf("var: variable %q is required but not set: pass --var %s=..., put it in a --var-file, set %s%s%s, or give it a default", name, name, EnvPrefix, name, hint)
	}
	d.source = "its default"
	return def, nil
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
