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

// ModuleDoc returns the docstring of a module ("@stdlib//sshd.star" or
// "sshd.star"), dedented; ok is false when there is no such module.
func ModuleDoc(module string) (doc string, ok bool) {
	name := strings.TrimPrefix(module, "@stdlib//")
	if strings.Contains(name, "/") {
		return "", false
	}
	src, err := fs.ReadFile(FS, name)
	if err != nil {
		return "", false
	}
	f, err := syntaxOptions.Parse(module, src, 0)
	if err != nil || len(f.Stmts) == 0 {
		return "", err == nil
	}
	return docstring(f.Stmts), true
}

// syntaxOptions are the dialect the modules are read in.
var syntaxOptions = &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true}

// docstring is the dedented string literal that opens a body, or "".
func docstring(body []syntax.Stmt) string {
	if len(body) > 0 {
		if e, ok := body[0].(*syntax.ExprStmt); ok {
			if lit, ok := e.X.(*syntax.Literal); ok && lit.Token == syntax.STRING {
				return dedent(lit.Value.(string))
			}
		}
	}
	return ""
}

func functionsOf(label string, src []byte) ([]Function, error) {
	f, err := syntaxOptions.Parse(label, src, 0)
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
		out = append(out, Function{
			Module: label, Name: def.Name.Name, Params: names, Doc: docstring(def.Body),
			Signature: def.Name.Name + "(" + strings.Join(params, ", ") + ")",
		})
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
