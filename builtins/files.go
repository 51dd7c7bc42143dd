package builtins

import (
	"fmt"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/imgbuild/imgbuild/engine/hcldiag"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// FileText is the text of a workspace file, from read_file() or
// template_file() (one rendered with a secret is a Secret instead). It is a
// string to the description (its methods, +, %,
// len) and, given to a keyword, an input of that build: the plan shows
// where the text came from and its digest, not the text, and the
// fingerprint changes when the file does.
type FileText struct {
	text   string
	origin string // read_file("//user-data.yaml")
}

var (
	_ starlark.HasAttrs  = (*FileText)(nil)
	_ starlark.HasBinary = (*FileText)(nil)
	_ starlark.Indexable = (*FileText)(nil)
)

func (f *FileText) String() string        { return f.text }
func (f *FileText) Type() string          { return "string" }
func (f *FileText) Freeze()               {}
func (f *FileText) Truth() starlark.Bool  { return f.text != "" }
func (f *FileText) Hash() (uint32, error) { return starlark.String(f.text).Hash() }
func (f *FileText) Len() int              { return len(f.text) }

// Index returns the i-th byte, as for strings.
func (f *FileText) Index(i int) starlark.Value { return starlark.String(f.text).Index(i) }

// Attr offers the string methods, on the text.
func (f *FileText) Attr(name string) (starlark.Value, error) {
	return starlark.String(f.text).Attr(name)
}

// AttrNames lists the string methods.
func (f *FileText) AttrNames() []string { return starlark.String(f.text).AttrNames() }

// Binary joins the text like a string: with strings, references, run values
// and secrets.
func (f *FileText) Binary(op syntax.Token, y starlark.Value, side starlark.Side) (starlark.Value, error) {
	if op != syntax.PLUS {
		return nil, nil
	}
	if yf, ok := y.(*FileText); ok {
		y = starlark.String(yf.text)
	}
	var x starlark.Value = starlark.String(f.text)
	if side == starlark.Right {
		x, y = y, x
	}
	return starlark.Binary(op, x, y)
}

// setting is the text as a keyword's value: a string that remembers where
// it came from, so that the plan shows that and its digest.
func (f *FileText) setting(tab *sensitive) (value.Value, error) {
	sv, err := tab.setting(f.text)
	if x, ok := sv.(value.String); ok && err == nil && !x.Sensitive {
		x.Origin = f.origin
		return x, nil
	}
	return sv, err
}

// readFile is read_file(path): the text of a file inside the workspace,
// "//path" from its root or relative to the calling file.
func (r *Recorder) readFile(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	if err := starlark.UnpackArgs("read_file", args, kwargs, "path", &path); err != nil {
		return nil, err
	}
	text, shown, err := r.workspaceFile(thread, path)
	if err != nil {
		return nil, fmt.Errorf("read_file: %v", err)
	}
	return &FileText{text: text, origin: fmt.Sprintf("read_file(%q)", shown)}, nil
}

// workspaceFile reads a file that must be inside the workspace, and
// returns it with its path as "//path" from the workspace root.
func (r *Recorder) workspaceFile(thread *starlark.Thread, path string) (string, string, error) {
	abs, err := r.path(thread, &schema.Field{Path: schema.PathFile}, path)
	if err != nil {
		return "", "", err
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return "", "", err
	}
	shown := path
	if rel, err := filepath.Rel(r.opts.Root, abs); err == nil && !strings.HasPrefix(rel, "..") {
		shown = "//" + filepath.ToSlash(rel)
	}
	return string(data), shown, nil
}

// templateFile is template_file(path, vars = {}): a workspace file rendered
// with HCL's template syntax, the one Packer's templatefile() uses:
// ${name}, ${name.key}, %{ if cond }...%{ endif }, %{ for x in list
// }...%{ endfor }, $${ for a literal ${, and a few string functions.
func (r *Recorder) templateFile(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	var vars *starlark.Dict
	if err := starlark.UnpackArgs("template_file", args, kwargs, "path", &path, "vars?", &vars); err != nil {
		return nil, err
	}
	src, shown, err := r.workspaceFile(thread, path)
	if err != nil {
		return nil, fmt.Errorf("template_file: %v", err)
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{}, Functions: templateFunctions}
	sensitive := false
	if vars != nil {
		for _, kv := range vars.Items() {
			k, ok := kv[0].(starlark.String)
			if !ok || !varName.MatchString(string(k)) {
				return nil, fmt.Errorf("template_file: for parameter vars: key %s is not a name a template can use (letters, digits and _)", kv[0])
			}
			v, sens, err := toCty(kv[1])
			if err != nil {
				return nil, fmt.Errorf("template_file: for parameter vars: key %q: %v", string(k), err)
			}
			sensitive = sensitive || sens
			ctx.Variables[string(k)] = v
		}
	}
	expr, diags := hclsyntax.ParseTemplate([]byte(src), shown, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("template_file: %s", hcldiag.Text(diags))
	}
	out, diags := expr.Value(ctx)
	if diags.HasErrors() {
		msg := hcldiag.Text(diags)
		if len(ctx.Variables) > 0 && strings.Contains(msg, "Unknown variable") {
			msg += fmt.Sprintf(" (vars has %s)", strings.Join(slices.Sorted(maps.Keys(ctx.Variables)), ", "))
		}
		return nil, fmt.Errorf("template_file: %s", msg)
	}
	if out.IsNull() || !out.IsKnown() || out.Type() != cty.String {
		return nil, fmt.Errorf("template_file: %s renders to %s, not text: a template that is only ${x} gives x itself", shown, out.Type().FriendlyName())
	}
	if sensitive {
		// Rendered with a secret: the text is a secret, never shown.
		return r.sens.secret(out.AsString()), nil
	}
	return &FileText{text: out.AsString(), origin: fmt.Sprintf("template_file(%q)", shown)}, nil
}

// toCty converts a value given to a template; sensitive says it held a
// secret. References and run values go in as the text that reads back as
// them ("${base.image_id}").
func toCty(v starlark.Value) (cty.Value, bool, error) {
	switch v := v.(type) {
	case starlark.NoneType:
		return cty.NullVal(cty.DynamicPseudoType), false, nil
	case starlark.Bool:
		return cty.BoolVal(bool(v)), false, nil
	case starlark.String:
		return cty.StringVal(string(v)), false, nil
	case *FileText:
		return cty.StringVal(v.text), false, nil
	case *Secret:
		return cty.StringVal(v.s), true, nil
	case *Ref, *Template, *RunTime:
		return cty.StringVal(v.String()), false, nil
	case starlark.Int:
		return cty.NumberVal(new(big.Float).SetInt(v.BigInt())), false, nil
	case starlark.Float:
		return cty.NumberFloatVal(float64(v)), false, nil
	case *starlark.List, starlark.Tuple:
		seq := v.(starlark.Indexable)
		vals := make([]cty.Value, seq.Len())
		sensitive := false
		for i := range vals {
			e, s, err := toCty(seq.Index(i))
			if err != nil {
				return cty.NilVal, false, fmt.Errorf("element %d: %v", i, err)
			}
			vals[i], sensitive = e, sensitive || s
		}
		return cty.TupleVal(vals), sensitive, nil
	case *starlark.Dict:
		attrs := map[string]cty.Value{}
		sensitive := false
		for _, kv := range v.Items() {
			k, ok := kv[0].(starlark.String)
			if !ok {
				return cty.NilVal, false, fmt.Errorf("dict keys must be strings, got %s", kv[0].Type())
			}
			e, s, err := toCty(kv[1])
			if err != nil {
				return cty.NilVal, false, fmt.Errorf("key %q: %v", string(k), err)
			}
			attrs[string(k)], sensitive = e, sensitive || s
		}
		return cty.ObjectVal(attrs), sensitive, nil
	}
	return cty.NilVal, false, fmt.Errorf("a %s cannot be given to a template", v.Type())
}

// templateFunctions are the functions templates may call: string and
// collection functions, none that read files or the clock.
var templateFunctions = map[string]function.Function{
	"upper": stdlib.UpperFunc, "lower": stdlib.LowerFunc, "title": stdlib.TitleFunc,
	"trimspace": stdlib.TrimSpaceFunc, "trim": stdlib.TrimFunc, "chomp": stdlib.ChompFunc,
	"indent": stdlib.IndentFunc, "join": stdlib.JoinFunc, "split": stdlib.SplitFunc,
	"replace": stdlib.ReplaceFunc, "format": stdlib.FormatFunc, "substr": stdlib.SubstrFunc,
	"jsonencode": stdlib.JSONEncodeFunc, "length": stdlib.LengthFunc, "keys": stdlib.KeysFunc,
	"values": stdlib.ValuesFunc, "contains": stdlib.ContainsFunc, "concat": stdlib.ConcatFunc,
	"lookup": stdlib.LookupFunc, "coalesce": stdlib.CoalesceFunc, "sort": stdlib.SortFunc,
	"flatten": stdlib.FlattenFunc, "distinct": stdlib.DistinctFunc, "min": stdlib.MinFunc,
	"max": stdlib.MaxFunc, "merge": stdlib.MergeFunc, "element": stdlib.ElementFunc,
}

// TemplateFunctions lists the functions template_file's templates may call.
func TemplateFunctions() []string {
	return slices.Sorted(maps.Keys(templateFunctions))
}
