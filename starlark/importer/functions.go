package importer

import (
	"regexp"
	"strings"

	"github.com/bazelbuild/buildtools/build"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// function translates a call of an HCL function (see functionMap).
func (s *scope) function(e *hclsyntax.FunctionCallExpr) (build.Expr, error) {
	if e.ExpandFinal {
		return nil, cannot("expanding arguments (...) is not mapped")
	}
	args, err := s.exprs(e.Args...)
	if err != nil {
		return nil, err
	}
	n := len(args)
	want := func(k int) error {
		if n != k {
			return cannot("%s() with %d arguments is not mapped", e.Name, n)
		}
		return nil
	}
	one := func(f func(x build.Expr) build.Expr) (build.Expr, error) {
		if err := want(1); err != nil {
			return nil, err
		}
		return f(paren(args[0])), nil
	}
	switch e.Name {
	case "timestamp":
		return call(ident("timestamp")), want(0)
	case "legacy_timestamp_unix":
		return method(call(ident("timestamp")), "unix"), nil
	case "legacy_unmapped":
		text := "this template action"
		if n == 1 {
			if s, ok := args[0].(*build.StringExpr); ok {
				text = s.Value
			}
		}
		return nil, cannot("the legacy template action %s is not mapped", text)
	case "uuidv4", "uuidv5":
		return call(ident("run_id")), nil
	case "formatdate":
		if err := want(2); err != nil {
			return nil, err
		}
		return call(ident("formatdate"), args...), nil
	case "legacy_isotime":
		if n == 0 {
			return call(ident("timestamp")), nil
		}
		layout, ok := args[0].(*build.StringExpr)
		if !ok || n != 1 {
			return nil, cannot("legacy_isotime with a layout that is not a literal is not mapped")
		}
		f, err := goLayoutToFormatdate(layout.Value)
		if err != nil {
			return nil, err
		}
		return method(call(ident("timestamp")), "format", str(f)), nil
	case "upper", "lower", "title":
		return one(func(x build.Expr) build.Expr { return method(x, e.Name) })
	case "trimspace":
		return one(func(x build.Expr) build.Expr { return method(x, "strip") })
	case "chomp":
		return one(func(x build.Expr) build.Expr { return method(x, "rstrip", str("\r\n")) })
	case "trimprefix", "trimsuffix":
		if err := want(2); err != nil {
			return nil, err
		}
		m := map[string]string{"trimprefix": "removeprefix", "trimsuffix": "removesuffix"}[e.Name]
		return method(paren(args[0]), m, args[1]), nil
	case "startswith", "endswith":
		if err := want(2); err != nil {
			return nil, err
		}
		return method(paren(args[0]), e.Name, args[1]), nil
	case "replace":
		if err := want(3); err != nil {
			return nil, err
		}
		if lit, ok := args[1].(*build.StringExpr); ok && strings.HasPrefix(lit.Value, "/") && strings.HasSuffix(lit.Value, "/") && len(lit.Value) > 1 {
			return nil, cannot("replace() with a regular expression is not mapped")
		}
		return method(paren(args[0]), "replace", args[1], args[2]), nil
	case "join":
		if err := want(2); err != nil {
			return nil, err
		}
		return method(paren(args[0]), "join", args[1]), nil
	case "split":
		if err := want(2); err != nil {
			return nil, err
		}
		return method(paren(args[1]), "split", args[0]), nil
	case "format":
		if n < 1 {
			return nil, cannot("format() without a format")
		}
		f, ok := args[0].(*build.StringExpr)
		if !ok || !simpleFormat.MatchString(f.Value) {
			return nil, cannot("format() with verbs other than %%s, %%d, %%v and %%%% is not mapped")
		}
		fs := str(strings.ReplaceAll(f.Value, "%v", "%s"))
		if n == 2 {
			return binary(fs, "%", paren(args[1])), nil
		}
		return binary(fs, "%", &build.TupleExpr{List: args[1:]}), nil
	case "length":
		return one(func(x build.Expr) build.Expr { return call(ident("len"), x) })
	case "lookup":
		switch n {
		case 2:
			return index(paren(args[0]), args[1]), nil
		case 3:
			return method(paren(args[0]), "get", args[1], args[2]), nil
		}
		return nil, cannot("lookup() with %d arguments", n)
	case "contains":
		if err := want(2); err != nil {
			return nil, err
		}
		return &build.ParenExpr{X: binary(paren(args[1]), "in", paren(args[0]))}, nil
	case "keys", "values":
		return one(func(x build.Expr) build.Expr { return method(x, e.Name) })
	case "concat":
		if n == 0 {
			return list(), nil
		}
		out := paren(args[0])
		for _, a := range args[1:] {
			out = binary(out, "+", paren(a))
		}
		return out, nil
	case "merge":
		if n == 0 {
			return &build.DictExpr{}, nil
		}
		out := args[0]
		for _, a := range args[1:] {
			out = call(ident("dict"), out, &build.UnaryExpr{Op: "**", X: paren(a)})
		}
		return out, nil
	case "min", "max":
		if n == 0 {
			return nil, cannot("%s() without arguments", e.Name)
		}
		return call(ident(e.Name), args...), nil
	case "sort":
		return one(func(x build.Expr) build.Expr { return call(ident("sorted"), x) })
	case "reverse":
		return one(func(x build.Expr) build.Expr { return call(ident("list"), call(ident("reversed"), x)) })
	case "element":
		if err := want(2); err != nil {
			return nil, err
		}
		return index(paren(args[0]), binary(paren(args[1]), "%", call(ident("len"), args[0]))), nil
	case "substr":
		if err := want(3); err != nil {
			return nil, err
		}
		end := binary(paren(args[1]), "+", paren(args[2]))
		return &build.SliceExpr{X: paren(args[0]), From: args[1], To: end}, nil
	case "coalesce":
		if n == 0 {
			return nil, cannot("coalesce() without arguments")
		}
		out := paren(args[0])
		for _, a := range args[1:] {
			out = binary(out, "or", paren(a))
		}
		return &build.ParenExpr{X: out}, nil
	case "tostring":
		return one(func(x build.Expr) build.Expr { return call(ident("str"), x) })
	case "tonumber":
		return one(func(x build.Expr) build.Expr { return call(ident("int"), x) })
	case "tolist", "toset":
		return one(func(x build.Expr) build.Expr { return call(ident("list"), x) })
	case "tomap":
		return one(func(x build.Expr) build.Expr { return call(ident("dict"), x) })
	case "jsonencode", "jsondecode":
		return one(func(x build.Expr) build.Expr {
			return method(ident("json"), strings.TrimPrefix(e.Name, "json"), x)
		})
	case "abspath":
		return one(func(x build.Expr) build.Expr { return x })
	case "file":
		if err := want(1); err != nil {
			return nil, err
		}
		return call(ident("read_file"), args[0]), nil
	case "templatefile":
		if err := want(2); err != nil {
			return nil, err
		}
		return call(ident("template_file"), args...), nil
	case "env":
		return nil, cannot("env() is allowed only in a variable's default (it becomes var(env = ...))")
	}
	return nil, cannot("the function %s() is not mapped", e.Name)
}

// simpleFormat is a format string whose verbs Starlark's % reads the same.
var simpleFormat = regexp.MustCompile(`^([^%]|%[sdv%])*$`)

// goLayouts are Go's reference-time layout elements (legacy isotime) and
// their formatdate equivalents, longest first.
var goLayouts = [][2]string{
	{"January", "MMMM"}, {"Monday", "EEEE"}, {"2006", "YYYY"}, {"-07:00", "ZZZZZ"}, {"-0700", "ZZZZ"},
	{"Z07:00", "Z"}, {"Jan", "MMM"}, {"Mon", "EEE"}, {"MST", "ZZZ"}, {"01", "MM"}, {"02", "DD"},
	{"15", "hh"}, {"03", "HH"}, {"04", "mm"}, {"05", "ss"}, {"06", "YY"}, {"PM", "AA"}, {"pm", "aa"},
	{"1", "M"}, {"2", "D"}, {"3", "H"}, {"4", "m"}, {"5", "s"},
}

// goLayoutToFormatdate converts a Go time layout ("2006-01-02T15:04") to
// a formatdate layout ("YYYY-MM-DD'T'hh:mm"), quoting literal letters.
func goLayoutToFormatdate(layout string) (string, error) {
	var b strings.Builder
	var lit strings.Builder
	flush := func() {
		if lit.Len() == 0 {
			return
		}
		text := lit.String()
		lit.Reset()
		if strings.ContainsFunc(text, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '\'' }) {
			b.WriteString("'" + strings.ReplaceAll(text, "'", "''") + "'")
			return
		}
		b.WriteString(text)
	}
outer:
	for i := 0; i < len(layout); {
		for _, el := range goLayouts {
			if strings.HasPrefix(layout[i:], el[0]) {
				flush()
				b.WriteString(el[1])
				i += len(el[0])
				continue outer
			}
		}
		if strings.HasPrefix(layout[i:], ".000") || strings.HasPrefix(layout[i:], ".999") {
			return "", cannot("fractional seconds in a time layout are not mapped")
		}
		lit.WriteByte(layout[i])
		i++
	}
	flush()
	return b.String(), nil
}
