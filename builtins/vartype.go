package builtins

import (
	stdjson "encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
)

// varType is a variable's type: declared with var(type = ...) or taken
// from its default. Values from outside the description are converted to it
// the way Packer converts them: "false" is False for a bool, "2" is 2 for a
// number, 2 is "2" for a string.
type varType struct {
	kind string   // string, int, float, number, bool, list, dict, any
	elem *varType // element type of a list or dict; nil means any
	// fromDefault says the type was taken from the default, for messages.
	fromDefault bool
	// whole is the variable's whole type, when this is an element type.
	whole *varType
}

var anyType = &varType{kind: "any"}

// varTypeKinds are the words var(type = ...) accepts.
var varTypeKinds = []string{"string", "int", "float", "number", "bool", "list", "dict", "any"}

// parseVarType reads a type such as "string", "number", "list(string)" or
// "dict(list(int))".
func parseVarType(s string) (*varType, error) {
	t, rest, err := parseTypeExpr(strings.TrimSpace(s))
	if err == nil && strings.TrimSpace(rest) != "" {
		err = fmt.Errorf("unexpected %q after the type", rest)
	}
	if err != nil {
		return nil, fmt.Errorf("type %q: %v; write one of %s, or list(T) or dict(T)", s, err, strings.Join(varTypeKinds, ", "))
	}
	for e := t.elem; e != nil; e = e.elem {
		e.whole = t
	}
	return t, nil
}

func parseTypeExpr(s string) (*varType, string, error) {
	i := 0
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z') {
		i++
	}
	word, rest := s[:i], strings.TrimLeft(s[i:], " ")
	known := false
	for _, k := range varTypeKinds {
		known = known || k == word
	}
	if !known {
		if word == "" {
			return nil, s, fmt.Errorf("missing a type name")
		}
		return nil, s, fmt.Errorf("unknown type %q", word)
	}
	t := &varType{kind: word}
	if !strings.HasPrefix(rest, "(") {
		return t, rest, nil
	}
	if word != "list" && word != "dict" {
		return nil, rest, fmt.Errorf("only list and dict take an element type")
	}
	elem, rest, err := parseTypeExpr(strings.TrimLeft(rest[1:], " "))
	if err != nil {
		return nil, rest, err
	}
	rest = strings.TrimLeft(rest, " ")
	if !strings.HasPrefix(rest, ")") {
		return nil, rest, fmt.Errorf("missing ')'")
	}
	t.elem = elem
	return t, strings.TrimLeft(rest[1:], " "), nil
}

func (t *varType) String() string {
	if t.elem != nil && t.elem.kind != "any" {
		return t.kind + "(" + t.elem.String() + ")"
	}
	return t.kind
}

// typeOfDefault is the type a default gives a variable with no declared
// type: None and no default mean any.
func typeOfDefault(def starlark.Value) *varType {
	kind := "any"
	switch def.(type) {
	case starlark.String:
		kind = "string"
	case starlark.Bool:
		kind = "bool"
	case starlark.Int:
		kind = "int"
	case starlark.Float:
		kind = "float"
	case *starlark.List, starlark.Tuple:
		kind = "list"
	case *starlark.Dict:
		kind = "dict"
	}
	return &varType{kind: kind, fromDefault: true}
}

// article is "an" before int, "a" before the other kinds.
func (t *varType) article() string {
	if t.kind == "int" || t.kind == "any" {
		return "an " + t.String()
	}
	return "a " + t.String()
}

// fromRaw converts a value written as text (--var, the environment) to t:
// scalars as Packer reads them, lists and dicts as JSON.
func (t *varType) fromRaw(raw string) (starlark.Value, error) {
	switch t.kind {
	case "any", "string":
		return starlark.String(raw), nil
	case "list", "dict":
		var x any
		dec := stdjson.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&x); err != nil {
			return nil, fmt.Errorf("%q is not JSON (%s, so write it as JSON): %v", raw, t.reason(), err)
		}
		return t.convert(x)
	}
	return t.convert(raw)
}

// reason says why a value must be of t, for messages.
func (t *varType) reason() string {
	if t.whole != nil {
		return t.whole.reason()
	}
	if t.fromDefault {
		return "the default is " + t.article()
	}
	return "the variable is declared " + t.String()
}

// convert converts decoded data (string, bool, json.Number, float64, int64,
// []any, map[string]any or nil) to t, as Packer converts var-file values.
func (t *varType) convert(x any) (starlark.Value, error) {
	if x == nil {
		return starlark.None, nil
	}
	if _, ok := x.(stdjson.RawMessage); ok {
		return starlark.None, nil
	}
	switch t.kind {
	case "any":
		return fromJSON(x)
	case "string":
		switch x := x.(type) {
		case string:
			return starlark.String(x), nil
		case bool:
			return starlark.String(strconv.FormatBool(x)), nil
		case stdjson.Number:
			return starlark.String(x.String()), nil
		case int64:
			return starlark.String(strconv.FormatInt(x, 10)), nil
		case float64:
			return starlark.String(strconv.FormatFloat(x, 'f', -1, 64)), nil
		}
	case "bool":
		switch x := x.(type) {
		case bool:
			return starlark.Bool(x), nil
		case string:
			switch x {
			case "true":
				return starlark.True, nil
			case "false":
				return starlark.False, nil
			}
			return nil, fmt.Errorf("%q is not a bool (%s): write true or false", x, t.reason())
		}
	case "int", "float", "number":
		return t.number(x)
	case "list":
		seq, ok := x.([]any)
		if !ok {
			break
		}
		elem := t.elem
		if elem == nil {
			elem = anyType
		}
		out := make([]starlark.Value, len(seq))
		for i, e := range seq {
			v, err := elem.convert(e)
			if err != nil {
				return nil, fmt.Errorf("element %d: %v", i, err)
			}
			out[i] = v
		}
		return starlark.NewList(out), nil
	case "dict":
		m, ok := x.(map[string]any)
		if !ok {
			break
		}
		elem := t.elem
		if elem == nil {
			elem = anyType
		}
		d := starlark.NewDict(len(m))
		for _, k := range sortedKeys(m) {
			v, err := elem.convert(m[k])
			if err != nil {
				return nil, fmt.Errorf("key %q: %v", k, err)
			}
			_ = d.SetKey(starlark.String(k), v)
		}
		return d, nil
	}
	return nil, fmt.Errorf("%s cannot be converted to %s (%s)", describeData(x), t.String(), t.reason())
}

// number converts x to an int, a float, or (kind number) whichever it is.
func (t *varType) number(x any) (starlark.Value, error) {
	var text string
	switch x := x.(type) {
	case string:
		text = strings.TrimSpace(x)
	case stdjson.Number:
		text = x.String()
	case int64:
		text = strconv.FormatInt(x, 10)
	case float64:
		text = strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return nil, fmt.Errorf("%s cannot be converted to %s (%s)", describeData(x), t.String(), t.reason())
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil && t.kind != "float" {
		return starlark.MakeInt64(n), nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		what := "a number"
		if t.kind != "number" {
			what = t.article()
		}
		if err != nil && errors.Is(err, strconv.ErrRange) {
			what += " imgbuild can hold"
		}
		return nil, fmt.Errorf("%q is not %s (%s)", text, what, t.reason())
	}
	if t.kind != "float" && f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		return starlark.MakeInt64(int64(f)), nil
	}
	if t.kind == "int" {
		return nil, fmt.Errorf("%q is not an int (%s)", text, t.reason())
	}
	return starlark.Float(f), nil
}

// describeData names a decoded value for messages: "the list [...]".
func describeData(x any) string {
	switch x := x.(type) {
	case string:
		return strconv.Quote(x)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	case bool:
		return "the bool " + strconv.FormatBool(x)
	}
	return fmt.Sprintf("the number %v", x)
}

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
