package stdlib

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"go.starlark.net/syntax"
)

// Function is one public function of a module, as imgbuild docs shows it:
// its signature and docstring, read from the module's source.
type Function struct {
	// Module is the label to load it from: "@stdlib//apt.star".
	Module string
	// Name is the function's name; Signature its def line without "def "
	// ("apt_install(packages, update = True)").
	Name, Signature string
	// Params are the parameters' names, "*args" and "**kwargs" with
	// their stars.
	Params []string
	// Doc is the docstring, dedented, or "".
	Doc string
}

// Functions lists the public functions (those not starting with "_") of
// every module, sorted by name, with their docstrings.
func Functions() ([]Function, error) {
	var out []Function
	files, err := fs.Glob(FS, "*.star")
	if err != nil {
		return nil, err
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.star") {
			continue
		}
		src, err := fs.ReadFile(FS, name)
		if err != nil {
			return nil, err
		}
		fns, err := functionsOf("@stdlib//"+name, src)
		if err != nil {
			return nil, err
		}
		out = append(out, fns...)
	}
	slices.SortFunc(out, func(a, b Function) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func functionsOf(label string, src []byte) ([]Function, error) {
	f, err := (&syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true}).Parse(label, src, 0)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", label, err)
	}
	lines := strings.Split(string(src), "\n")
	text := func(n syntax.Node) string {
		start, end := n.Span()
		if start.Line != end.Line || int(start.Line) > len(lines) {
			return "..."
		}
		l := lines[start.Line-1]
		return l[start.Col-1 : min(int(end.Col-1), len(l))]
	}
	var out []Function
	for _, st := range f.Stmts {
		def, ok := st.(*syntax.DefStmt)
		if !ok || strings.HasPrefix(def.Name.Name, "_") {
			continue
		}
		var params, names []string
		for _, p := range def.Params {
			params = append(params, text(p))
			names = append(names, paramName(p))
		}
		fn := Function{Module: label, Name: def.Name.Name, Signature: def.Name.Name + "(" + strings.Join(params, ", ") + ")", Params: names}
		if len(def.Body) > 0 {
			if e, ok := def.Body[0].(*syntax.ExprStmt); ok {
				if lit, ok := e.X.(*syntax.Literal); ok && lit.Token == syntax.STRING {
					fn.Doc = dedent(lit.Value.(string))
				}
			}
		}
		out = append(out, fn)
	}
	return out, nil
}

// paramName is a parameter's name: "x" for x and x = 1, "**kw" for **kw.
func paramName(p syntax.Expr) string {
	switch p := p.(type) {
	case *syntax.Ident:
		return p.Name
	case *syntax.BinaryExpr: // x = default
		return paramName(p.X)
	case *syntax.UnaryExpr: // *args, **kwargs, or a lone *
		if p.X == nil {
			return p.Op.String()
		}
		return p.Op.String() + paramName(p.X)
	}
	return ""
}

// dedent removes the indentation a docstring's later lines share.
func dedent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	indent := -1
	for _, l := range lines[1:] {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if indent < 0 || n < indent {
			indent = n
		}
	}
	for i := 1; i < len(lines) && indent > 0; i++ {
		if len(lines[i]) >= indent {
			lines[i] = lines[i][indent:]
		}
	}
	return strings.Join(lines, "\n")
}
