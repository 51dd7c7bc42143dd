package importer

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bazelbuild/buildtools/build"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// unmappable is an expression imgbuild has no equivalent for.
type unmappable struct{ why string }

func (u *unmappable) Error() string { return u.why }

func cannot(format string, args ...any) error { return &unmappable{why: fmt.Sprintf(format, args...)} }

// Small constructors for Starlark syntax.
func ident(name string) *build.Ident        { return &build.Ident{Name: name} }
func str(s string) *build.StringExpr        { return &build.StringExpr{Value: s, Token: quote(s)} }
func num(s string) *build.LiteralExpr       { return &build.LiteralExpr{Token: s} }
func list(xs ...build.Expr) *build.ListExpr { return &build.ListExpr{List: xs, ForceMultiLine: false} }
func call(fn build.Expr, args ...build.Expr) *build.CallExpr {
	return &build.CallExpr{X: fn, List: args}
}
func method(x build.Expr, name string, args ...build.Expr) *build.CallExpr {
	return call(&build.DotExpr{X: x, Name: name}, args...)
}
func kwarg(k string, v build.Expr) *build.AssignExpr {
	return &build.AssignExpr{LHS: ident(k), Op: "=", RHS: v}
}
func binary(x build.Expr, op string, y build.Expr) *build.BinaryExpr {
	return &build.BinaryExpr{X: x, Op: op, Y: y}
}
func index(x, i build.Expr) *build.IndexExpr { return &build.IndexExpr{X: x, Y: i} }
func paren(x build.Expr) build.Expr {
	switch x.(type) {
	case *build.Ident, *build.StringExpr, *build.LiteralExpr, *build.CallExpr, *build.IndexExpr, *build.DotExpr, *build.ListExpr, *build.DictExpr, *build.ParenExpr:
		return x
	}
	return &build.ParenExpr{X: x}
}

// dict makes a dict literal from ordered keys and values.
func dict(keys []string, vals []build.Expr) *build.DictExpr {
	d := &build.DictExpr{}
	for i, k := range keys {
		d.List = append(d.List, &build.KeyValueExpr{Key: str(k), Value: vals[i]})
	}
	return d
}

// literal turns an HCL value into a Starlark literal.
func literal(v cty.Value) (build.Expr, error) {
	if v.IsNull() {
		return ident("None"), nil
	}
	if !v.IsKnown() {
		return nil, cannot("an unknown value")
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return str(v.AsString()), nil
	case t == cty.Bool:
		if v.True() {
			return ident("True"), nil
		}
		return ident("False"), nil
	case t == cty.Number:
		bf := v.AsBigFloat()
		if n, acc := bf.Int64(); acc == big.Exact {
			return num(strconv.FormatInt(n, 10)), nil
		}
		f, _ := bf.Float64()
		return num(strconv.FormatFloat(f, 'g', -1, 64)), nil
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		l := list()
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			x, err := literal(e)
			if err != nil {
				return nil, err
			}
			l.List = append(l.List, x)
		}
		return l, nil
	case t.IsMapType() || t.IsObjectType():
		var keys []string
		var vals []build.Expr
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			x, err := literal(e)
			if err != nil {
				return nil, err
			}
			keys, vals = append(keys, k.AsString()), append(vals, x)
		}
		return dict(keys, vals), nil
	}
	return nil, cannot("a %s value", t.FriendlyName())
}

// scope is what names in expressions mean where they are translated.
type scope struct {
	c *converter
	// iter maps an iterator name of a dynamic block or for expression to
	// the Starlark names of its key and value.
	iter map[string][2]string
	// src is the source being built: its name, type and build name, for
	// source.name, source.type and build.name.
	src *sourceRef
}

func (s *scope) with(name, key, val string) *scope {
	n := &scope{c: s.c, src: s.src, iter: map[string][2]string{}}
	for k, v := range s.iter {
		n.iter[k] = v
	}
	n.iter[name] = [2]string{key, val}
	return n
}

// expr translates an HCL expression.
func (s *scope) expr(e hclsyntax.Expression) (build.Expr, error) {
	switch e := e.(type) {
	case *hclsyntax.LiteralValueExpr:
		return literal(e.Val)
	case *hclsyntax.TemplateWrapExpr:
		return s.expr(e.Wrapped)
	case *hclsyntax.TemplateExpr:
		return s.template(e)
	case *hclsyntax.ParenthesesExpr:
		x, err := s.expr(e.Expression)
		if err != nil {
			return nil, err
		}
		return &build.ParenExpr{X: x}, nil
	case *hclsyntax.ScopeTraversalExpr:
		return s.traversal(e.Traversal)
	case *hclsyntax.RelativeTraversalExpr:
		x, err := s.expr(e.Source)
		if err != nil {
			return nil, err
		}
		return s.steps(x, e.Traversal)
	case *hclsyntax.IndexExpr:
		xs, err := s.exprs(e.Collection, e.Key)
		if err != nil {
			return nil, err
		}
		return index(xs[0], xs[1]), nil
	case *hclsyntax.TupleConsExpr:
		xs, err := s.exprs(e.Exprs...)
		if err != nil {
			return nil, err
		}
		return list(xs...), nil
	case *hclsyntax.ObjectConsExpr:
		d := &build.DictExpr{}
		for _, item := range e.Items {
			var k build.Expr
			if name := hcl.ExprAsKeyword(item.KeyExpr); name != "" {
				k = str(name)
			} else {
				var err error
				if k, err = s.expr(item.KeyExpr); err != nil {
					return nil, err
				}
			}
			v, err := s.expr(item.ValueExpr)
			if err != nil {
				return nil, err
			}
			d.List = append(d.List, &build.KeyValueExpr{Key: k, Value: v})
		}
		return d, nil
	case *hclsyntax.ObjectConsKeyExpr:
		if name := hcl.ExprAsKeyword(e); name != "" {
			return str(name), nil
		}
		return s.expr(e.Wrapped)
	case *hclsyntax.ConditionalExpr:
		xs, err := s.exprs(e.Condition, e.TrueResult, e.FalseResult)
		if err != nil {
			return nil, err
		}
		return &build.ConditionalExpr{Then: paren(xs[1]), Test: paren(xs[0]), Else: paren(xs[2])}, nil
	case *hclsyntax.BinaryOpExpr:
		return s.binaryOp(e)
	case *hclsyntax.UnaryOpExpr:
		x, err := s.expr(e.Val)
		if err != nil {
			return nil, err
		}
		switch e.Op {
		case hclsyntax.OpLogicalNot:
			return &build.UnaryExpr{Op: "not ", X: paren(x)}, nil
		case hclsyntax.OpNegate:
			return &build.UnaryExpr{Op: "-", X: paren(x)}, nil
		}
	case *hclsyntax.FunctionCallExpr:
		return s.function(e)
	case *hclsyntax.ForExpr:
		return s.forExpr(e)
	case *hclsyntax.SplatExpr:
		return nil, cannot("splat expressions ([*]) are not mapped")
	}
	return nil, cannot("this expression is not mapped")
}

// exprs translates each of es, in order; the first that cannot be
// translated is the error.
func (s *scope) exprs(es ...hclsyntax.Expression) ([]build.Expr, error) {
	out := make([]build.Expr, len(es))
	for i, x := range es {
		var err error
		if out[i], err = s.expr(x); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// template joins a string template's parts with +, converting non-string
// parts with str().
func (s *scope) template(e *hclsyntax.TemplateExpr) (build.Expr, error) {
	var parts []build.Expr
	for _, p := range e.Parts {
		if lit, ok := p.(*hclsyntax.LiteralValueExpr); ok && lit.Val.Type() == cty.String {
			parts = append(parts, str(lit.Val.AsString()))
			continue
		}
		switch p.(type) {
		case *hclsyntax.TemplateJoinExpr:
			return nil, cannot("template directives (%%{ if }, %%{ for }) in strings are not mapped")
		}
		x, err := s.expr(p)
		if err != nil {
			return nil, err
		}
		switch s.kindOf(x) {
		case "number":
			x = call(ident("str"), x)
		case "bool":
			x = &build.ConditionalExpr{Then: str("true"), Test: x, Else: str("false")}
			x = &build.ParenExpr{X: x}
		}
		parts = append(parts, x)
	}
	return joinStrings(parts), nil
}

// joinStrings joins parts with +, merging adjacent literals.
func joinStrings(parts []build.Expr) build.Expr {
	var merged []build.Expr
	for _, p := range parts {
		if ps, ok := p.(*build.StringExpr); ok && len(merged) > 0 {
			if prev, ok := merged[len(merged)-1].(*build.StringExpr); ok {
				merged[len(merged)-1] = str(prev.Value + ps.Value)
				continue
			}
		}
		if ps, ok := p.(*build.StringExpr); ok && ps.Value == "" && len(parts) > 1 {
			continue
		}
		merged = append(merged, p)
	}
	if len(merged) == 0 {
		return str("")
	}
	out := merged[0]
	for _, p := range merged[1:] {
		out = binary(out, "+", p)
	}
	return out
}

// kindOf guesses what a translated expression gives, for str() in string
// templates: "number", "bool", or "" (a string, or not known).
func (s *scope) kindOf(x build.Expr) string {
	switch x := x.(type) {
	case *build.LiteralExpr:
		return "number"
	case *build.Ident:
		if x.Name == "True" || x.Name == "False" {
			return "bool"
		}
		return s.c.kinds[x.Name]
	case *build.CallExpr:
		if fn, ok := x.X.(*build.Ident); ok && (fn.Name == "len" || fn.Name == "int" || fn.Name == "float") {
			return "number"
		}
	}
	return ""
}

func (s *scope) traversal(t hcl.Traversal) (build.Expr, error) {
	root := t.RootName()
	rest := t[1:]
	attr := func(i int) string {
		if i < len(rest) {
			if a, ok := rest[i].(hcl.TraverseAttr); ok {
				return a.Name
			}
		}
		return ""
	}
	if it, ok := s.iter[root]; ok {
		switch attr(0) {
		case "key":
			return s.steps(ident(it[0]), rest[1:])
		case "value":
			return s.steps(ident(it[1]), rest[1:])
		}
		return s.steps(ident(it[1]), rest)
	}
	switch root {
	case "var", "local":
		name := attr(0)
		n, ok := s.c.names[root+"."+name]
		if !ok {
			return nil, cannot("%s.%s is not declared", root, name)
		}
		if s.c.unmapped[n] {
			return nil, cannot("%s.%s could not be mapped", root, name)
		}
		return s.steps(ident(n), rest[1:])
	case "data":
		key := "data." + attr(0) + "." + attr(1)
		n, ok := s.c.names[key]
		if !ok || s.c.unmapped[n] {
			return nil, cannot("%s could not be mapped", key)
		}
		if a := attr(2); a == "id" || a == "image_id" {
			return s.steps(ident(n), rest[3:])
		}
		return nil, cannot("%s.%s is not mapped (only .id)", key, attr(2))
	case "path":
		switch attr(0) {
		case "root", "cwd":
			return str(s.c.rootDir()), nil
		}
	case "source", "build":
		if s.src == nil {
			return nil, cannot("%s.%s outside a build", root, attr(0))
		}
		switch root + "." + attr(0) {
		case "source.name":
			return str(s.src.name), nil
		case "source.type":
			return str(s.src.typ), nil
		case "build.name":
			return str(s.src.buildName), nil
		}
	case "packer":
		return nil, cannot("packer.%s is not mapped", attr(0))
	}
	return nil, cannot("%s is not mapped", traversalText(t))
}

// steps applies attribute and index steps: objects are dicts in Starlark.
func (s *scope) steps(x build.Expr, t hcl.Traversal) (build.Expr, error) {
	for _, step := range t {
		switch st := step.(type) {
		case hcl.TraverseAttr:
			x = index(x, str(st.Name))
		case hcl.TraverseIndex:
			k, err := literal(st.Key)
			if err != nil {
				return nil, err
			}
			x = index(x, k)
		default:
			return nil, cannot("this traversal is not mapped")
		}
	}
	return x, nil
}

func traversalText(t hcl.Traversal) string {
	var b strings.Builder
	for _, step := range t {
		switch st := step.(type) {
		case hcl.TraverseRoot:
			b.WriteString(st.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + st.Name)
		default:
			b.WriteString("[...]")
		}
	}
	return b.String()
}

var binaryOps = map[*hclsyntax.Operation]string{
	hclsyntax.OpLogicalOr: "or", hclsyntax.OpLogicalAnd: "and",
	hclsyntax.OpEqual: "==", hclsyntax.OpNotEqual: "!=",
	hclsyntax.OpGreaterThan: ">", hclsyntax.OpGreaterThanOrEqual: ">=",
	hclsyntax.OpLessThan: "<", hclsyntax.OpLessThanOrEqual: "<=",
	hclsyntax.OpAdd: "+", hclsyntax.OpSubtract: "-", hclsyntax.OpMultiply: "*",
	hclsyntax.OpDivide: "/", hclsyntax.OpModulo: "%",
}

func (s *scope) binaryOp(e *hclsyntax.BinaryOpExpr) (build.Expr, error) {
	op, ok := binaryOps[e.Op]
	if !ok {
		return nil, cannot("this operator is not mapped")
	}
	xs, err := s.exprs(e.LHS, e.RHS)
	if err != nil {
		return nil, err
	}
	return binary(paren(xs[0]), op, paren(xs[1])), nil
}

func (s *scope) forExpr(e *hclsyntax.ForExpr) (build.Expr, error) {
	coll, err := s.expr(e.CollExpr)
	if err != nil {
		return nil, err
	}
	key, val := e.KeyVar, e.ValVar
	inner := s.with(val, key, val)
	if key != "" {
		inner.iter[key] = [2]string{key, key}
	}
	var target build.Expr = ident(val)
	if key != "" {
		// HCL's two-variable form: index and element of a list, key and
		// value of a map; .items() covers maps, the usual case.
		target = &build.TupleExpr{List: []build.Expr{ident(key), ident(val)}, NoBrackets: true}
		coll = method(coll, "items")
	}
	clause := &build.ForClause{Vars: target, X: coll}
	clauses := []build.Expr{clause}
	if e.CondExpr != nil {
		cond, err := inner.expr(e.CondExpr)
		if err != nil {
			return nil, err
		}
		clauses = append(clauses, &build.IfClause{Cond: cond})
	}
	v, err := inner.expr(e.ValExpr)
	if err != nil {
		return nil, err
	}
	if e.KeyExpr == nil {
		return &build.Comprehension{Curly: false, Body: v, Clauses: clauses}, nil
	}
	if e.Group {
		return nil, cannot("grouping for expressions (...) are not mapped")
	}
	k, err := inner.expr(e.KeyExpr)
	if err != nil {
		return nil, err
	}
	return &build.Comprehension{Curly: true, Body: &build.KeyValueExpr{Key: k, Value: v}, Clauses: clauses}, nil
}

// quote writes s as a Starlark string literal that keeps its non-ASCII
// text as it is: buildtools' own quoting writes each byte above 0x7f as an
// octal escape, which Starlark refuses ("non-ASCII octal escape"). The
// printer uses the token because it unquotes to s.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\ufffd"):
			b.WriteByte(s[i]) // not UTF-8: the byte as it is, so that the token unquotes to s
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\%03o`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
