package builtins

import (
	"fmt"
	"reflect"

	"github.com/imgbuild/imgbuild/engine/schema"
	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// Formatting that keeps sensitive values sensitive.
//
// go.starlark.net formats strings itself ("%s" % x, "{}".format(x),
// sep.join(xs)) and asks no value how: a Secret can only answer with its
// marker (sensitive.go). So, before a file is compiled, RewriteFormatting
// routes x % y, x.format(...) and x.join(...) through builtins named "%",
// ".format" and ".join" (names no description can write, so none can shadow
// them). Each does what go.starlark.net does and reads the markers in the
// result back, so "%s" % tok is a sensitive string like "" + tok; join also
// takes secrets and outputs, which go.starlark.net's would refuse. str(),
// repr() and json.encode are wrapped the same way.
const (
	percentHook = "%"
	formatHook  = ".format"
	joinHook    = ".join"
)

var (
	exprType      = reflect.TypeOf((*syntax.Expr)(nil)).Elem()
	exprSliceType = reflect.TypeOf([]syntax.Expr(nil))
	jsonEncode    = json.Module.Members["encode"]
)

// RewriteFormatting routes the %, format() and join() of f through the
// formatting builtins. Positions are kept, so errors point where they did.
// x %= y is rewritten when x is a plain name.
func RewriteFormatting(f *syntax.File) {
	syntax.Walk(f, func(n syntax.Node) bool {
		if a, ok := n.(*syntax.AssignStmt); ok && a.Op == syntax.PERCENT_EQ {
			if id, ok := a.LHS.(*syntax.Ident); ok {
				a.Op = syntax.EQ
				a.RHS = hookCall(percentHook, a.OpPos, []syntax.Expr{&syntax.Ident{NamePos: id.NamePos, Name: id.Name}, a.RHS}, a.RHS)
			}
		}
		rewriteChildren(reflect.ValueOf(n))
		return true
	})
}

// rewriteChildren replaces, in the node n points to, every expression
// field (and element of an expression list) that rewrite changes.
func rewriteChildren(n reflect.Value) {
	if n.Kind() != reflect.Pointer || n.Elem().Kind() != reflect.Struct {
		return
	}
	s := n.Elem()
	for i := 0; i < s.NumField(); i++ {
		f := s.Field(i)
		if !f.CanSet() {
			continue
		}
		switch f.Type() {
		case exprType:
			if e, ok := f.Interface().(syntax.Expr); ok && e != nil {
				if r := rewrite(e); r != nil {
					f.Set(reflect.ValueOf(r))
				}
			}
		case exprSliceType:
			list := f.Interface().([]syntax.Expr)
			for j, e := range list {
				if r := rewrite(e); r != nil {
					list[j] = r
				}
			}
		}
	}
}

// rewrite returns the hook call that replaces e, or nil.
func rewrite(e syntax.Expr) syntax.Expr {
	switch e := e.(type) {
	case *syntax.BinaryExpr:
		if e.Op == syntax.PERCENT {
			return hookCall(percentHook, e.OpPos, []syntax.Expr{e.X, e.Y}, e.Y)
		}
	case *syntax.CallExpr:
		if dot, ok := e.Fn.(*syntax.DotExpr); ok && (dot.Name.Name == "format" || dot.Name.Name == "join") {
			return &syntax.CallExpr{
				Fn:     &syntax.Ident{NamePos: dot.Name.NamePos, Name: "." + dot.Name.Name},
				Lparen: e.Lparen,
				Args:   append([]syntax.Expr{dot.X}, e.Args...),
				Rparen: e.Rparen,
			}
		}
	}
	return nil
}

func hookCall(name string, pos syntax.Position, args []syntax.Expr, last syntax.Expr) *syntax.CallExpr {
	_, end := last.Span()
	return &syntax.CallExpr{Fn: &syntax.Ident{NamePos: pos, Name: name}, Lparen: pos, Args: args, Rparen: end}
}

// formatting returns the formatting builtins and wrapped str, repr and
// json, to be predeclared.
func (r *Recorder) formatting() starlark.StringDict {
	members := starlark.StringDict{}
	for k, v := range json.Module.Members {
		members[k] = v
	}
	members["encode"] = starlark.NewBuiltin("encode", r.readBack(jsonEncode))
	return starlark.StringDict{
		percentHook: starlark.NewBuiltin(percentHook, r.percent),
		formatHook:  starlark.NewBuiltin("format", r.format),
		joinHook:    starlark.NewBuiltin("join", r.join),
		"str":       starlark.NewBuiltin("str", r.str),
		"repr":      starlark.NewBuiltin("repr", r.repr),
		"json":      &starlarkstruct.Module{Name: "json", Members: members},
	}
}

// readBack calls fn and reads the markers in a string it returns back.
func (r *Recorder) readBack(fn starlark.Value) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		res, err := starlark.Call(thread, fn, args, kwargs)
		if err != nil {
			return nil, err
		}
		return r.reread(res)
	}
}

func (r *Recorder) reread(v starlark.Value) (starlark.Value, error) {
	if s, ok := v.(starlark.String); ok {
		return r.sens.fromText(string(s), false)
	}
	return v, nil
}

// percent is x % y.
func (r *Recorder) percent(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	res, err := starlark.Binary(syntax.PERCENT, args[0], args[1])
	if err != nil {
		return nil, err
	}
	if _, ok := args[0].(starlark.String); ok {
		return r.reread(res)
	}
	return res, nil
}

// format is recv.format(...).
func (r *Recorder) format(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	return r.method(thread, "format", args[0], args[1:], kwargs)
}

// join is recv.join(...): for a string, elements may be secrets and
// outputs as well as strings.
func (r *Recorder) join(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	recv, rest := args[0], args[1:]
	if _, ok := recv.(starlark.String); ok && len(rest) == 1 && len(kwargs) == 0 {
		if it, ok := rest[0].(starlark.Iterable); ok {
			var elems []starlark.Value
			changed := false
			iter := it.Iterate()
			var e starlark.Value
			for iter.Next(&e) {
				switch e.(type) {
				case *Secret, *Template, *Ref, *RunTime:
					e = starlark.String(e.String())
					changed = true
				}
				elems = append(elems, e)
			}
			iter.Done()
			if changed {
				rest = starlark.Tuple{starlark.NewList(elems)}
			}
		}
	}
	return r.method(thread, "join", recv, rest, kwargs)
}

// method calls recv.name(args...) as go.starlark.net would, and reads a
// string's result back.
func (r *Recorder) method(thread *starlark.Thread, name string, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	m, err := attr(recv, name)
	if err != nil {
		return nil, err
	}
	res, err := starlark.Call(thread, m, args, kwargs)
	if err != nil {
		return nil, err
	}
	if _, ok := recv.(starlark.String); ok {
		return r.reread(res)
	}
	return res, nil
}

// attr is x.name, with go.starlark.net's message when there is none.
func attr(x starlark.Value, name string) (starlark.Value, error) {
	h, ok := x.(starlark.HasAttrs)
	if !ok {
		return nil, fmt.Errorf("%s has no .%s field or method", x.Type(), name)
	}
	v, err := h.Attr(name)
	if err != nil || v != nil {
		return v, err
	}
	msg := fmt.Sprintf("%s has no .%s field or method", x.Type(), name)
	if near := schema.Nearest(name, h.AttrNames()); near != "" {
		msg += fmt.Sprintf(" (did you mean .%s?)", near)
	}
	return nil, fmt.Errorf("%s", msg)
}

// str is str(x): a secret stays a secret, and a value holding one (a list,
// a template) gives a sensitive string.
func (r *Recorder) str(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var x starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &x); err != nil {
		return nil, err
	}
	switch x := x.(type) {
	case starlark.String, *Secret:
		return x, nil
	}
	return r.sens.fromText(x.String(), false)
}

// repr is repr(x), keeping secrets sensitive.
func (r *Recorder) repr(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var x starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &x); err != nil {
		return nil, err
	}
	if s, ok := x.(*Secret); ok {
		return r.sens.secret(starlark.String(s.s).String()), nil
	}
	return r.sens.fromText(x.String(), false)
}
