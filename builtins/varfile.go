package builtins

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/imgbuild/imgbuild/engine/hcldiag"
	"github.com/zclconf/go-cty/cty"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// ReadVarFile reads variable values from a var-file:
//   - Packer's HCL form (.pkrvars.hcl, any .hcl): name = value lines;
//   - a JSON object ({"version": "1.2"}), Packer's .pkrvars.json included;
//   - a .star file of plain assignments (version = "1.2").
//
// Values keep the types the file gives them; var() converts them to the
// variable's type as Packer does ("false" becomes False for a bool). Each
// value records the file, line and column that set it. Errors say where
// the file does not parse.
func ReadVarFile(path string) (map[string]VarValue, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--var-file: %v", err)
	}
	switch {
	case strings.HasSuffix(path, ".star"):
		return readStarVars(path, src)
	case strings.HasSuffix(path, ".hcl"):
		return readHCLVars(path, src)
	}
	return readJSONVars(path, src)
}

// readJSONVars reads one JSON object, noting the position of each key.
func readJSONVars(path string, src []byte) (map[string]VarValue, error) {
	name := filepath.Base(path)
	fail := func(err error) (map[string]VarValue, error) {
		// A whole-document decode places syntax errors exactly; the
		// token stream's offsets are relative to its buffer.
		var doc any
		if whole := stdjson.Unmarshal(src, &doc); whole != nil {
			err = whole
		}
		return nil, fmt.Errorf("--var-file %s does not parse as JSON: %s", path, jsonError(src, err))
	}
	dec := stdjson.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return fail(err)
	}
	if d, ok := tok.(stdjson.Delim); !ok || d != '{' {
		kind := "value"
		switch tok.(type) {
		case stdjson.Delim:
			kind = "array"
		case string:
			kind = "string"
		case stdjson.Number:
			kind = "number"
		case bool:
			kind = "bool"
		}
		return nil, fmt.Errorf("--var-file %s does not parse as JSON: the file must hold one JSON object of variable names to values, not a %s", path, kind)
	}
	out := map[string]VarValue{}
	for dec.More() {
		keyAt := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		k, _ := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return fail(err)
		}
		line, col := lineCol(src, skipSpace(src, keyAt))
		pos := fmt.Sprintf("%s:%d:%d", path, line, col)
		if !varName.MatchString(k) {
			return nil, fmt.Errorf("--var-file %s: %q is not a valid variable name", pos, k)
		}
		if _, err := fromJSON(v); err != nil {
			return nil, fmt.Errorf("--var-file %s: variable %q: %v", pos, k, err)
		}
		if v == nil {
			v = stdjson.RawMessage("null")
		}
		out[k] = VarValue{JSON: v, Source: name, Pos: pos}
	}
	if _, err := dec.Token(); err != nil {
		return fail(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("--var-file %s does not parse as JSON: more than one value in the file", path)
	}
	return out, nil
}

// skipSpace returns the offset of the first byte at or after off that is
// not white space or a comma: where a key starts.
func skipSpace(src []byte, off int64) int64 {
	for off < int64(len(src)) && strings.IndexByte(" \t\r\n,", src[off]) >= 0 {
		off++
	}
	return off
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(src []byte, off int64) (int, int) {
	line, col := 1, 1
	for _, c := range src[:min(int(off), len(src))] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// readHCLVars reads Packer's .pkrvars.hcl form: name = value lines whose
// values are literals (no variables, no functions), as in Packer.
func readHCLVars(path string, src []byte) (map[string]VarValue, error) {
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("--var-file %s", hcldiag.Text(diags))
	}
	body := f.Body.(*hclsyntax.Body)
	if len(body.Blocks) > 0 {
		b := body.Blocks[0]
		return nil, fmt.Errorf("--var-file %s: %q is a block; a var-file holds only name = value lines", hcldiag.Pos(path, b.TypeRange.Start), b.Type)
	}
	out := map[string]VarValue{}
	for name, attr := range body.Attributes {
		pos := hcldiag.Pos(path, attr.NameRange.Start)
		v, diags := attr.Expr.Value(nil)
		if diags.HasErrors() {
			return nil, fmt.Errorf("--var-file %s: variable %q: a var-file value must be a literal (no variables or functions): %s", pos, name, diags[0].Summary)
		}
		x, err := ctyToData(v)
		if err != nil {
			return nil, fmt.Errorf("--var-file %s: variable %q: %v", pos, name, err)
		}
		if x == nil {
			x = stdjson.RawMessage("null")
		}
		out[name] = VarValue{JSON: x, Source: filepath.Base(path), Pos: pos}
	}
	return out, nil
}

// ctyToData converts an HCL value into the plain data var() converts:
// string, bool, json.Number, []any, map[string]any or nil.
func ctyToData(v cty.Value) (any, error) {
	if v.IsNull() {
		return nil, nil
	}
	if !v.IsKnown() {
		return nil, fmt.Errorf("the value is not known")
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString(), nil
	case t == cty.Bool:
		return v.True(), nil
	case t == cty.Number:
		// Formatting a big.Float with a huge exponent takes minutes:
		// go through int64 or float64, which is what var() can hold.
		bf := v.AsBigFloat()
		if n, acc := bf.Int64(); acc == big.Exact {
			return stdjson.Number(strconv.FormatInt(n, 10)), nil
		}
		f, _ := bf.Float64()
		if math.IsInf(f, 0) {
			return nil, fmt.Errorf("the number is too large")
		}
		return stdjson.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		out := []any{}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			x, err := ctyToData(e)
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	case t.IsMapType() || t.IsObjectType():
		out := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			x, err := ctyToData(e)
			if err != nil {
				return nil, err
			}
			out[k.AsString()] = x
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %s value cannot be a variable", t.FriendlyName())
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
	line, col := lineCol(src, off)
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
