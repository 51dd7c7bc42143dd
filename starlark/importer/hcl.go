package importer

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/bazelbuild/buildtools/build"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/imgbuild/imgbuild/engine/hcldiag"
)

// converter holds one import: the template's blocks, the names given to
// its variables, locals and data sources, and the description made.
type converter struct {
	opts   Options
	dir    string            // the template's directory
	files  map[string][]byte // source text by file name, for TODOs
	legacy bool              // from a JSON template: builds are named as the builders

	blocks []*hclsyntax.Block
	attrs  []*hclsyntax.Attribute // top-level attributes (none are valid)

	names    map[string]string // "var.x", "local.y", "data.t.n" → Starlark name
	kinds    map[string]string // Starlark name → "number", "bool", ...
	unmapped map[string]bool   // Starlark names whose definition became a TODO
	taken    map[string]bool

	// warned holds the ranges of the TODOs warned about: text that goes
	// into several builds (a provisioner, an override) warns once.
	warned map[hcl.Range]bool

	out      *build.File
	warnings []string
	todos    int
	builds   []string
}

// sourceRef is a source as one build uses it.
type sourceRef struct {
	typ, name string // source.type, source.name
	buildName string // build.name
	label     string // "type.name", what only/except and override name
	full      string // the imgbuild build's name
	block     *hclsyntax.Block
	override  *hclsyntax.Block // the build block's source block, if any
}

func newConverter(opts Options, dir string) *converter {
	c := &converter{opts: opts, dir: dir, files: map[string][]byte{}, names: map[string]string{},
		kinds: map[string]string{}, unmapped: map[string]bool{}, taken: map[string]bool{},
		out: &build.File{Type: build.TypeDefault}}
	for _, n := range reserved {
		c.taken[n] = true
	}
	for n := range opts.Builtins {
		c.taken[n] = true
	}
	return c
}

// reserved are Starlark's keywords and the predeclared names a variable
// must not hide.
var reserved = []string{"and", "break", "continue", "def", "elif", "else", "for", "if", "in", "lambda", "load",
	"not", "or", "pass", "return", "while", "None", "True", "False", "var", "struct", "json", "math", "timestamp",
	"run_id", "formatdate", "read_file", "template_file", "len", "str", "int", "float", "list", "dict", "sorted",
	"min", "max", "type", "print", "fail", "range", "enumerate", "zip", "any", "all", "bool", "hasattr", "getattr"}

func (c *converter) parse(name string, src []byte) error {
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		return fmt.Errorf("%s", hcldiag.Text(diags))
	}
	c.files[name] = src
	body := f.Body.(*hclsyntax.Body)
	c.blocks = append(c.blocks, body.Blocks...)
	for _, a := range sortedAttrs(body) {
		c.attrs = append(c.attrs, a)
	}
	return nil
}

// sortedAttrs returns a body's attributes in the order they are written.
func sortedAttrs(b *hclsyntax.Body) []*hclsyntax.Attribute {
	var out []*hclsyntax.Attribute
	for _, a := range b.Attributes {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y *hclsyntax.Attribute) int {
		if x.SrcRange.Filename != y.SrcRange.Filename {
			return strings.Compare(x.SrcRange.Filename, y.SrcRange.Filename)
		}
		return x.SrcRange.Start.Byte - y.SrcRange.Start.Byte
	})
	return out
}

// text is the original text of a range.
func (c *converter) text(r hcl.Range) string {
	src := c.files[r.Filename]
	if r.Start.Byte < 0 || r.End.Byte > len(src) || r.Start.Byte > r.End.Byte {
		return ""
	}
	return string(src[r.Start.Byte:r.End.Byte])
}

// todo records that the text at r could not be mapped and returns its
// TODO comment lines.
func (c *converter) todo(r hcl.Range, why string) []build.Comment {
	if c.warned[r] {
		return todoLines(c.text(r), r.Start.Column)
	}
	if c.warned == nil {
		c.warned = map[hcl.Range]bool{}
	}
	c.warned[r] = true
	c.todos++
	pos := fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
	if c.legacy {
		pos = strings.TrimSuffix(r.Filename, " (as HCL)")
	}
	c.warnings = append(c.warnings, fmt.Sprintf("%s: %s; written as a TODO(import) comment", pos, why))
	return todoLines(c.text(r), r.Start.Column)
}

// note returns a comment for something deliberately left out.
func note(format string, args ...any) build.Comment {
	return build.Comment{Token: "# " + fmt.Sprintf(format, args...)}
}

// name gives a template name a Starlark name of its own.
func (c *converter) name(want string) string {
	n := regexp.MustCompile(`[^A-Za-z0-9_]`).ReplaceAllString(want, "_")
	if n == "" || n[0] >= '0' && n[0] <= '9' {
		n = "v_" + n
	}
	for c.taken[n] {
		n += "_"
	}
	c.taken[n] = true
	return n
}

// rootDir is the template's directory relative to the output ("" when
// they are the same), for path.root.
func (c *converter) rootDir() string {
	out := c.opts.OutDir
	if out == "" {
		return "."
	}
	absOut, err1 := filepath.Abs(out)
	absDir, err2 := filepath.Abs(c.dir)
	if err1 != nil || err2 != nil {
		return "."
	}
	rel, err := filepath.Rel(absOut, absDir)
	if err != nil {
		return "."
	}
	return filepath.ToSlash(rel)
}

// emit adds a statement with comments before it.
func (c *converter) emit(x build.Expr, before ...build.Comment) {
	x.Comment().Before = append(x.Comment().Before, before...)
	c.out.Stmt = append(c.out.Stmt, x)
}

// comments adds lone comments as a statement of their own.
func (c *converter) comments(lines []build.Comment) {
	if len(lines) == 0 {
		return
	}
	cb := &build.CommentBlock{}
	cb.Comments.Before = lines
	c.out.Stmt = append(c.out.Stmt, cb)
}

func (c *converter) convert() {
	for _, a := range c.attrs {
		c.comments(c.todo(a.SrcRange, "a top-level attribute is not part of a Packer template"))
	}
	var vars, locals, data, sources, builds []*hclsyntax.Block
	for _, b := range c.blocks {
		switch b.Type {
		case "variable", "variables":
			vars = append(vars, b)
		case "locals", "local":
			locals = append(locals, b)
		case "data":
			data = append(data, b)
		case "source":
			sources = append(sources, b)
		case "build":
			builds = append(builds, b)
		case "packer":
			c.comments([]build.Comment{note("packer { ... }: not needed; imgbuild's drivers are built in.")})
		default:
			c.comments(c.todo(b.Range(), fmt.Sprintf("the %q block is not mapped", b.Type)))
		}
	}
	for _, b := range vars {
		c.variables(b)
	}
	c.definitions(locals, data)
	c.sources(sources, builds)
}

// scopeFor is the scope of top-level expressions.
func (c *converter) scope() *scope { return &scope{c: c, iter: map[string][2]string{}} }

// attrExpr translates an attribute's value, or returns its TODO.
func (c *converter) attrExpr(s *scope, a *hclsyntax.Attribute) (build.Expr, []build.Comment) {
	x, err := s.expr(a.Expr)
	if err != nil {
		return nil, c.todo(a.SrcRange, err.Error())
	}
	return x, nil
}
