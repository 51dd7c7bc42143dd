package builtins

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// ReadVarFile reads variable values from a JSON object ({"version": "1.2"})
// or, for a .star file, from plain assignments (version = "1.2"). Values
// keep their types. Errors say where the file does not parse.
func ReadVarFile(path string) (map[string]VarValue, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--var-file: %v", err)
	}
	name := filepath.Base(path)
	out := map[string]VarValue{}
	if strings.HasSuffix(path, ".star") {
		return readStarVars(path, src)
	}
	dec := stdjson.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("--var-file %s does not parse as JSON: %s", path, jsonError(src, err))
	}
	if dec.More() {
		return nil, fmt.Errorf("--var-file %s does not parse as JSON: more than one value in the file", path)
	}
	for k, v := range doc {
		if !varName.MatchString(k) {
			return nil, fmt.Errorf("--var-file %s: %q is not a valid variable name", path, k)
		}
		if _, err := fromJSON(v); err != nil {
			return nil, fmt.Errorf("--var-file %s: variable %q: %v", path, k, err)
		}
		if v == nil {
			v = stdjson.RawMessage("null")
		}
		out[k] = VarValue{JSON: v, Source: name}
	}
	return out, nil
}

// jsonError adds the line and column to a JSON syntax error.
func jsonError(src []byte, err error) string {
	var se *stdjson.SyntaxError
	var te *stdjson.UnmarshalTypeError
	off := int64(-1)
	switch {
	case asErr(err, &se):
		off = se.Offset - 1 // Offset is just past the offending byte
	case asErr(err, &te):
		return fmt.Sprintf("the file must hold one JSON object of variable names to values, not a %s", te.Value)
	}
	if off < 0 {
		return err.Error()
	}
	line, col := 1, 1
	for _, c := range src[:min(int(off), len(src))] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}

func asErr[T error](err error, target *T) bool {
	for err != nil {
		if t, ok := err.(T); ok {
			*target = t
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func readStarVars(path string, src []byte) (map[string]VarValue, error) {
	f, err := syntax.Parse(path, src, 0)
	if err != nil {
		return nil, fmt.Errorf("--var-file %s does not parse: %v", path, err)
	}
	for _, stmt := range f.Stmts {
		a, ok := stmt.(*syntax.AssignStmt)
		if !ok || a.Op != syntax.EQ {
			pos, _ := stmt.Span()
			return nil, fmt.Errorf("--var-file %s: only plain assignments (name = value) are allowed", pos)
		}
		if _, ok := a.LHS.(*syntax.Ident); !ok {
			pos, _ := stmt.Span()
			return nil, fmt.Errorf("--var-file %s: assign to a plain name", pos)
		}
	}
	thread := &starlark.Thread{Name: "var-file"}
	thread.SetMaxExecutionSteps(1_000_000)
	globals, err := starlark.ExecFileOptions(&syntax.FileOptions{}, thread, path, src, nil)
	if err != nil {
		return nil, fmt.Errorf("--var-file %s: %v", path, err)
	}
	out := map[string]VarValue{}
	names := make([]string, 0, len(globals))
	for k := range globals {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		j, err := toJSON(globals[k])
		if err != nil {
			return nil, fmt.Errorf("--var-file %s: %s: %v", path, k, err)
		}
		if j == nil {
			j = stdjson.RawMessage("null")
		}
		out[k] = VarValue{JSON: j, Source: filepath.Base(path)}
	}
	return out, nil
}

func toJSON(v starlark.Value) (any, error) {
	switch v := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case starlark.Bool:
		return bool(v), nil
	case starlark.String:
		return string(v), nil
	case starlark.Int:
		n, ok := v.Int64()
		if !ok {
			return nil, fmt.Errorf("%s is too large", v)
		}
		return stdjson.Number(fmt.Sprint(n)), nil
	case starlark.Float:
		return float64(v), nil
	case *starlark.List, starlark.Tuple:
		seq := v.(starlark.Indexable)
		out := make([]any, seq.Len())
		for i := range out {
			e, err := toJSON(seq.Index(i))
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	case *starlark.Dict:
		out := map[string]any{}
		for _, kv := range v.Items() {
			k, ok := kv[0].(starlark.String)
			if !ok {
				return nil, fmt.Errorf("dict keys must be strings")
			}
			e, err := toJSON(kv[1])
			if err != nil {
				return nil, err
			}
			out[string(k)] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %s is not a plain value", v.Type())
}
