package importer

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bazelbuild/buildtools/build"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// variables converts variable "x" { ... } and variables { x = ... } into
// var() calls.
func (c *converter) variables(b *hclsyntax.Block) {
	if b.Type == "variables" {
		for _, a := range sortedAttrs(b.Body) {
			c.variable(a.Name, a.SrcRange, map[string]*hclsyntax.Attribute{"default": a}, nil)
		}
		return
	}
	if len(b.Labels) != 1 {
		c.comments(c.todo(b.Range(), "a variable block needs one name"))
		return
	}
	c.variable(b.Labels[0], b.Range(), b.Body.Attributes, b.Body.Blocks)
}

func (c *converter) variable(name string, r hcl.Range, attrs map[string]*hclsyntax.Attribute, blocks []*hclsyntax.Block) {
	sname := c.name(name)
	c.names["var."+name] = sname
	s := c.scope()
	args := []build.Expr{str(name)}
	var todos []build.Comment
	kind := ""
	if t := attrs["type"]; t != nil {
		ts, k, err := typeString(t.Expr)
		if err != nil {
			todos = append(todos, c.todo(t.SrcRange, err.Error())...)
		} else {
			args = append(args, kwarg("type", str(ts)))
			kind = k
		}
	}
	if d := attrs["default"]; d != nil {
		if env, def, ok := envDefault(d.Expr); ok {
			args = append(args, kwarg("env", str(env)), kwarg("default", def))
		} else if x, t := c.attrExpr(s, d); t != nil {
			todos = append(todos, t...)
		} else {
			args = append(args, kwarg("default", x))
			if kind == "" {
				kind = s.kindOf(x)
			}
		}
	}
	if d := attrs["description"]; d != nil {
		if x, t := c.attrExpr(s, d); t == nil {
			args = append(args, kwarg("description", x))
		} else {
			todos = append(todos, t...)
		}
	}
	if a := attrs["sensitive"]; a != nil {
		if x, t := c.attrExpr(s, a); t == nil {
			if id, ok := x.(*build.Ident); !ok || id.Name != "False" {
				args = append(args, kwarg("sensitive", x))
			}
		} else {
			todos = append(todos, t...)
		}
	}
	for _, key := range []string{"nullable"} {
		if a := attrs[key]; a != nil {
			args[0].Comment().Suffix = append(args[0].Comment().Suffix, note("ignored: %s", strings.TrimSpace(c.text(a.SrcRange))))
		}
	}
	for key, a := range attrs {
		switch key {
		case "type", "default", "description", "sensitive", "nullable":
		default:
			todos = append(todos, c.todo(a.SrcRange, fmt.Sprintf("variable %q: %s is not mapped", name, key))...)
		}
	}
	var checks [][2]build.Expr // condition, message
	for _, vb := range blocks {
		if vb.Type != "validation" {
			todos = append(todos, c.todo(vb.Range(), fmt.Sprintf("variable %q: a %s block is not mapped", name, vb.Type))...)
			continue
		}
		vs := c.scope()
		c.names["var."+name] = sname // the lambda's parameter has the variable's name
		cond, msg := vb.Body.Attributes["condition"], vb.Body.Attributes["error_message"]
		if cond == nil || msg == nil {
			todos = append(todos, c.todo(vb.Range(), "a validation block needs condition and error_message")...)
			continue
		}
		cx, err1 := vs.expr(cond.Expr)
		mx, err2 := vs.expr(msg.Expr)
		if err1 != nil || err2 != nil {
			why := "the validation is not mapped"
			if err1 != nil {
				why = err1.Error()
			}
			todos = append(todos, c.todo(vb.Range(), why)...)
			continue
		}
		checks = append(checks, [2]build.Expr{cx, mx})
	}
	if len(checks) > 0 {
		var body build.Expr = ident("True")
		for i := len(checks) - 1; i >= 0; i-- {
			body = &build.ConditionalExpr{Then: paren(checks[i][1]), Test: &build.UnaryExpr{Op: "not ", X: paren(checks[i][0])}, Else: body}
		}
		lambda := &build.LambdaExpr{Function: build.Function{Params: []build.Expr{ident(sname)}, Body: []build.Expr{body}}}
		args = append(args, kwarg("validation", lambda))
	}
	c.kinds[sname] = kind
	c.emit(&build.AssignExpr{LHS: ident(sname), Op: "=", RHS: call(ident("var"), args...)}, todos...)
}

// envDefault recognises default = env("X") (or "${env("X")}"), Packer's
// way to default a variable from the environment.
func envDefault(e hclsyntax.Expression) (string, build.Expr, bool) {
	if w, ok := e.(*hclsyntax.TemplateWrapExpr); ok {
		e = w.Wrapped
	}
	f, ok := e.(*hclsyntax.FunctionCallExpr)
	if !ok || f.Name != "env" || len(f.Args) != 1 {
		return "", nil, false
	}
	lit, ok := f.Args[0].(*hclsyntax.TemplateExpr)
	if !ok || !lit.IsStringLiteral() {
		return "", nil, false
	}
	v, diags := lit.Value(nil)
	if diags.HasErrors() {
		return "", nil, false
	}
	return v.AsString(), str(""), true
}

// typeString converts a Packer type expression to var()'s type, and the
// kind the importer tracks.
func typeString(e hclsyntax.Expression) (string, string, error) {
	if kw := hcl.ExprAsKeyword(e); kw != "" {
		switch kw {
		case "string", "bool", "number", "any":
			return kw, kw, nil
		}
		return "", "", cannot("the type %s is not mapped", kw)
	}
	f, ok := e.(*hclsyntax.FunctionCallExpr)
	if !ok {
		return "", "", cannot("this type is not mapped")
	}
	switch f.Name {
	case "list", "set", "map":
		if len(f.Args) != 1 {
			return "", "", cannot("%s() takes one type", f.Name)
		}
		elem, _, err := typeString(f.Args[0])
		if err != nil {
			return "", "", err
		}
		outer := map[string]string{"list": "list", "set": "list", "map": "dict"}[f.Name]
		if elem == "any" {
			return outer, outer, nil
		}
		return outer + "(" + elem + ")", outer, nil
	case "object":
		return "dict", "dict", nil
	case "tuple":
		return "list", "list", nil
	}
	return "", "", cannot("the type %s() is not mapped", f.Name)
}

// def is a local or a data source: a name defined by an expression.
type def struct {
	key   string // "local.x", "data.amazon-ami.ubuntu"
	name  string
	r     hcl.Range
	deps  []string
	local *hclsyntax.Attribute
	data  *hclsyntax.Block
}

// definitions converts locals and data sources in the order they depend
// on each other.
func (c *converter) definitions(locals, data []*hclsyntax.Block) {
	var defs []*def
	for _, b := range locals {
		if b.Type == "local" {
			expr := b.Body.Attributes["expression"]
			if len(b.Labels) != 1 || expr == nil {
				c.comments(c.todo(b.Range(), "a local block needs a name and an expression"))
				continue
			}
			a := *expr
			a.Name = b.Labels[0]
			defs = append(defs, &def{key: "local." + a.Name, local: &a, r: b.Range()})
			continue
		}
		for _, a := range sortedAttrs(b.Body) {
			defs = append(defs, &def{key: "local." + a.Name, local: a, r: a.SrcRange})
		}
	}
	for _, b := range data {
		if len(b.Labels) != 2 {
			c.comments(c.todo(b.Range(), "a data block needs a type and a name"))
			continue
		}
		defs = append(defs, &def{key: "data." + b.Labels[0] + "." + b.Labels[1], data: b, r: b.Range()})
	}
	byKey := map[string]*def{}
	for _, d := range defs {
		base := strings.TrimPrefix(d.key, "local.")
		if d.data != nil {
			base = d.data.Labels[1] + "_" + strings.ReplaceAll(d.data.Labels[0], "-", "_")
		}
		d.name = c.name(base)
		c.names[d.key] = d.name
		byKey[d.key] = d
		var traversals []hcl.Traversal
		if d.local != nil {
			traversals = d.local.Expr.Variables()
		} else {
			for _, a := range d.data.Body.Attributes {
				traversals = append(traversals, a.Expr.Variables()...)
			}
		}
		for _, t := range traversals {
			key := t.RootName()
			if key == "local" || key == "data" {
				key = traversalKey(t)
			}
			d.deps = append(d.deps, key)
		}
	}
	done := map[string]bool{}
	var visit func(d *def, stack []string)
	visit = func(d *def, stack []string) {
		if done[d.key] {
			return
		}
		if slices.Contains(stack, d.key) {
			c.unmapped[d.name] = true
			return
		}
		for _, dep := range d.deps {
			if dd, ok := byKey[dep]; ok {
				visit(dd, append(stack, d.key))
			}
		}
		done[d.key] = true
		if d.local != nil {
			c.local(d)
		} else {
			c.dataSource(d)
		}
	}
	for _, d := range defs {
		visit(d, nil)
	}
}

// traversalKey is "local.x" or "data.type.name" for a traversal.
func traversalKey(t hcl.Traversal) string {
	parts := []string{t.RootName()}
	for _, st := range t[1:] {
		a, ok := st.(hcl.TraverseAttr)
		if !ok {
			break
		}
		parts = append(parts, a.Name)
		if parts[0] == "local" && len(parts) == 2 || len(parts) == 3 {
			break
		}
	}
	return strings.Join(parts, ".")
}

func (c *converter) local(d *def) {
	s := c.scope()
	x, todo := c.attrExpr(s, d.local)
	if todo != nil {
		c.unmapped[d.name] = true
		c.comments(todo)
		return
	}
	c.kinds[d.name] = s.kindOf(x)
	c.emit(&build.AssignExpr{LHS: ident(d.name), Op: "=", RHS: x})
}

// dataSource converts data "amazon-ami" into aws_ami(); other data
// sources are TODOs, and so is what uses them.
func (c *converter) dataSource(d *def) {
	b := d.data
	if b.Labels[0] != "amazon-ami" || c.opts.Builtins["aws_ami"] == nil {
		c.unmapped[d.name] = true
		c.comments(c.todo(b.Range(), fmt.Sprintf("the data source %q is not mapped", b.Labels[0])))
		return
	}
	x, todos := c.amiLookup(c.scope(), b.Body)
	if x == nil {
		c.unmapped[d.name] = true
		c.comments(todos)
		return
	}
	c.emit(&build.AssignExpr{LHS: ident(d.name), Op: "=", RHS: x}, todos...)
}

// amiLookup converts an AMI filter (data "amazon-ami" or
// source_ami_filter) into aws_ami(owners, name, filters, most_recent).
func (c *converter) amiLookup(s *scope, body *hclsyntax.Body) (build.Expr, []build.Comment) {
	var args []build.Expr
	var todos []build.Comment
	for _, a := range sortedAttrs(body) {
		switch a.Name {
		case "filters":
			obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr)
			if !ok {
				x, t := c.attrExpr(s, a)
				if t != nil {
					todos = append(todos, t...)
					continue
				}
				args = append(args, kwarg("filters", x))
				continue
			}
			rest := &build.DictExpr{}
			for _, item := range obj.Items {
				key := hcl.ExprAsKeyword(item.KeyExpr)
				if key == "" {
					if k, err := s.expr(item.KeyExpr); err == nil {
						if ks, ok := k.(*build.StringExpr); ok {
							key = ks.Value
						}
					}
				}
				v, err := s.expr(item.ValueExpr)
				if err != nil || key == "" {
					todos = append(todos, c.todo(item.ValueExpr.Range(), "this filter is not mapped")...)
					continue
				}
				if key == "name" {
					args = append(args, kwarg("name", v))
					continue
				}
				rest.List = append(rest.List, &build.KeyValueExpr{Key: str(key), Value: v})
			}
			if len(rest.List) > 0 {
				args = append(args, kwarg("filters", rest))
			}
		case "owners", "most_recent", "region", "include_deprecated":
			x, t := c.attrExpr(s, a)
			if t != nil {
				todos = append(todos, t...)
				continue
			}
			args = append(args, kwarg(a.Name, x))
		default:
			todos = append(todos, c.todo(a.SrcRange, fmt.Sprintf("%s is not mapped in aws_ami()", a.Name))...)
		}
	}
	for _, blk := range body.Blocks {
		todos = append(todos, c.todo(blk.Range(), fmt.Sprintf("the %s block is not mapped in aws_ami()", blk.Type))...)
	}
	if len(args) == 0 {
		return nil, todos
	}
	return call(ident("aws_ami"), args...), todos
}
