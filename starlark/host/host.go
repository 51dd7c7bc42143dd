// Package host evaluates imgbuild descriptions: it resolves module labels
// (//path.star from the workspace root, ./ and ../ relative to the loading
// file, @stdlib//name.star embedded in the binary, @name//path.star from a
// module declared in imgbuild.mod), evaluates each module once per run,
// reports load cycles with their chain, and turns Starlark errors into
// messages that name file, line and column, with the backtrace across files.
//
// Evaluation is hermetic: no clock, no randomness, no network, and loads
// only from the workspace, the declared modules and the standard library.
// The host knows nothing of builds or platforms; its predeclared names come
// from the caller.
//
// host.go is over 500 lines: label resolution, loading with its cycle and
// boundary checks, and the errors that name where a load came from are one
// mechanism, split only at the budget (budget.go) and the modules (mod.go).
package host

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	wspath "github.com/imgbuild/imgbuild/engine/workspace"
	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// ModFile is the name of the file that marks a workspace root and declares
// external modules.
const ModFile = "imgbuild.mod"

// DefaultMaxSteps bounds the Starlark computation steps of one evaluation
// (the description and every module it loads, together), so that a runaway
// loop fails instead of hanging.
const DefaultMaxSteps = 100_000_000

// Host evaluates one description and the modules it loads.
type Host struct {
	// Root is the workspace root (absolute).
	Root string
	// Predeclared are the names every module sees (the builtins).
	Predeclared starlark.StringDict
	// Stdlib holds the @stdlib// modules, by name ("apt.star").
	Stdlib fs.FS
	// Modules maps an external module's canonical name (the name its
	// labels carry: "@platform//users.star") to its directory (absolute).
	Modules map[string]string
	// Deps maps each scope to the names it loads modules by, and those to
	// canonical names: Deps[""] is the workspace's imgbuild.mod,
	// Deps["platform"] the dependencies module platform declares, so that
	// @name// resolves per module. Nil makes every module in Modules
	// visible everywhere under its canonical name.
	Deps map[string]map[string]string
	// MaxSteps bounds the steps of one evaluation, all modules together;
	// 0 means DefaultMaxSteps.
	MaxSteps uint64
	// MaxMemory bounds the memory one evaluation holds, in bytes; 0 means
	// DefaultMaxMemory.
	MaxMemory uint64
	// Print receives print() output; nil discards it.
	Print func(pos, msg string)
	// SetupThread, if set, is called on every thread before it runs, so the
	// caller can attach its state with Thread.SetLocal.
	SetupThread func(*starlark.Thread)
	// ReadFile reads workspace and module files; nil means os.ReadFile.
	ReadFile func(path string) ([]byte, error)
	// Transform, if set, may rewrite each file's syntax tree after it is
	// parsed and before it is resolved and compiled.
	Transform func(*syntax.File)
	// Redact, if set, is applied to the text of every error and print()
	// message, so that what the caller hides is never shown.
	Redact func(string) string

	cache  map[string]*entry
	order  []string
	budget *budget

	syntaxMu sync.Mutex
	syntax   map[string]*syntax.File
}

type entry struct {
	globals starlark.StringDict
	err     error
	loading bool
}

// Module identifies one loaded file.
type Module struct {
	// Label is the canonical label: "//teams/x.star", "@stdlib//apt.star",
	// "@shared//lib.star". It is also the file name in positions, except
	// for workspace files, which are shown relative to the root ("x.star").
	Label string
	// Path is the file on disk, or "" for the standard library.
	Path string
}

// FileOptions are the Starlark dialect of descriptions.
var FileOptions = &syntax.FileOptions{
	Set:             true,
	While:           true,
	TopLevelControl: true,
	GlobalReassign:  true,
	Recursion:       true,
}

func init() {
	resolve.AllowSet = true
}

// Exec evaluates the description at file (a path inside Root) and returns
// its globals.
func (h *Host) Exec(file string) (starlark.StringDict, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(h.Root, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("%s is outside the workspace %s", file, h.Root)
	}
	h.cache = map[string]*entry{}
	h.budget = newBudget(h.MaxSteps, h.MaxMemory)
	defer h.budget.close()
	return h.load(nil, nil, "//"+filepath.ToSlash(rel))
}

// Loaded returns the labels of every module evaluated, in the order they
// finished.
func (h *Host) Loaded() []string { return append([]string(nil), h.order...) }

// DisplayName is how positions name the module with the given label:
// workspace files relative to the root, others by their label.
func DisplayName(label string) string {
	if strings.HasPrefix(label, "//") {
		return label[2:]
	}
	return label
}

// Resolve turns a file name as shown in positions back into a path on
// disk, for builtins that check files relative to the calling module. The
// standard library has no files: ok is false for it.
func (h *Host) Resolve(display string) (dir string, ok bool) {
	switch {
	case strings.HasPrefix(display, "@stdlib//"):
		return "", false
	case strings.HasPrefix(display, "@"):
		name, rest, _ := strings.Cut(display[1:], "//")
		d, ok := h.Modules[name]
		if !ok {
			return "", false
		}
		return filepath.Join(d, filepath.FromSlash(rest)), true
	}
	return filepath.Join(h.Root, filepath.FromSlash(display)), true
}

// Boundary is the directory a module's files must stay inside: the
// workspace root for workspace files, the module's directory for external
// modules.
func (h *Host) Boundary(display string) string {
	if strings.HasPrefix(display, "@") && !strings.HasPrefix(display, "@stdlib//") {
		name, _, _ := strings.Cut(display[1:], "//")
		return h.Modules[name]
	}
	return h.Root
}

// canonical resolves a load() label written in the module `from` (a
// canonical label, or "" for the top file) to a canonical label.
func (h *Host) canonical(from, label string) (string, error) {
	switch {
	case label == "":
		return "", errors.New("empty module name")
	case strings.HasPrefix(label, "/") && !strings.HasPrefix(label, "//"):
		return "", fmt.Errorf("absolute paths are not allowed: load modules with //path from the workspace root or ./path relative to this file")
	case !strings.HasSuffix(label, ".star"):
		return "", fmt.Errorf("module names end in .star")
	}
	var repo, p string
	switch {
	case strings.HasPrefix(label, "//"):
		repo, p = repoOf(from), label[2:]
		if repo == "@stdlib" && from != "" {
			// //x inside a module means that module's root.
		}
	case strings.HasPrefix(label, "@"):
		name, rest, ok := strings.Cut(label[1:], "//")
		if !ok || name == "" {
			return "", fmt.Errorf("external module labels look like @name//path.star")
		}
		if name != "stdlib" {
			canon, err := h.depOf(strings.TrimPrefix(repoOf(from), "@"), name)
			if err != nil {
				return "", err
			}
			name = canon
		}
		repo, p = "@"+name, rest
	case strings.HasPrefix(label, "./") || strings.HasPrefix(label, "../"):
		repo = repoOf(from)
		fromPath := strings.TrimPrefix(from, repo+"//")
		p = path.Join(path.Dir(fromPath), label)
		if p == ".." || strings.HasPrefix(p, "../") {
			return "", fmt.Errorf("%s leads outside the %s", label, scopeName(repo))
		}
		return repo + "//" + p, nil
	default:
		return "", fmt.Errorf("module names start with //, ./, ../ or @name//")
	}
	clean := path.Clean(p)
	if clean == ".." || strings.HasPrefix(clean, "../") || path.IsAbs(clean) {
		return "", fmt.Errorf("%s leads outside the %s", label, scopeName(repo))
	}
	return repo + "//" + clean, nil
}

// depOf returns the canonical name of the module that scope (a canonical
// module name, "" for the workspace) loads as @name//.
func (h *Host) depOf(scope, name string) (string, error) {
	if scope == "stdlib" {
		return "", fmt.Errorf("the standard library loads only @stdlib// modules, not @%s//", name)
	}
	var deps map[string]string
	if h.Deps == nil {
		deps = map[string]string{}
		for n := range h.Modules {
			deps[n] = n
		}
	} else {
		deps = h.Deps[scope]
	}
	if canon, ok := deps[name]; ok {
		return canon, nil
	}
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	if scope == "" {
		if len(names) == 0 {
			return "", fmt.Errorf("no module named %q is declared: %s declares none (add dep(name = %q, git = ..., ref = ...) or dep(name = %q, path = ...))", name, ModFile, name, name)
		}
		return "", fmt.Errorf("no module named %q is declared in %s (declared: %s)", name, ModFile, strings.Join(names, ", "))
	}
	if len(names) == 0 {
		return "", fmt.Errorf("module %s declares no dependency named %q: its %s declares none", scope, name, ModFile)
	}
	return "", fmt.Errorf("module %s declares no dependency named %q in its %s (it declares: %s)", scope, name, ModFile, strings.Join(names, ", "))
}

func repoOf(label string) string {
	if strings.HasPrefix(label, "@") {
		name, _, _ := strings.Cut(label, "//")
		return name
	}
	return ""
}

func scopeName(repo string) string {
	switch repo {
	case "":
		return "workspace"
	case "@stdlib":
		return "standard library"
	}
	return "module " + repo
}

// read returns the source of the module with a canonical label.
func (h *Host) read(label string) ([]byte, error) {
	repo := repoOf(label)
	rel := strings.TrimPrefix(label, repo+"//")
	switch repo {
	case "@stdlib":
		if h.Stdlib == nil {
			return nil, fmt.Errorf("no standard library is available")
		}
		src, err := fs.ReadFile(h.Stdlib, rel)
		if err != nil {
			return nil, fmt.Errorf("the standard library has no module %s%s", rel, h.stdlibHint())
		}
		return src, nil
	case "":
		return h.readFile(h.Root, rel, label)
	default:
		return h.readFile(h.Modules[repo[1:]], rel, label)
	}
}

func (h *Host) stdlibHint() string {
	var names []string
	_ = fs.WalkDir(h.Stdlib, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".star") && !strings.HasSuffix(p, "_test.star") {
			names = append(names, p)
		}
		return nil
	})
	if len(names) == 0 {
		return ""
	}
	return " (it has " + strings.Join(names, ", ") + ")"
}

// readFile reads the module rel (slash-separated) of the directory root:
// through root, so that a symbolic link is followed only while it stays
// inside (the workspace, or the module's own directory).
func (h *Host) readFile(root, rel, label string) ([]byte, error) {
	p := filepath.Join(root, filepath.FromSlash(rel))
	var src []byte
	var err error
	if h.ReadFile != nil {
		src, err = h.ReadFile(p)
	} else {
		src, err = wspath.ReadFile(root, filepath.FromSlash(rel))
	}
	var esc *wspath.EscapeError
	switch {
	case errors.As(err, &esc):
		return nil, fmt.Errorf("module %s: %v; modules may only be read from inside the %s", label, esc, scopeName(repoOf(label)))
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("module %s not found (looked for %s)", label, p)
	}
	return src, err
}

// load evaluates the module with the label written in `from` once, and
// returns its globals; parent is the thread whose load() asked for it.
func (h *Host) load(parent *starlark.Thread, chain []string, label string) (starlark.StringDict, error) {
	from := ""
	if len(chain) > 0 {
		from = chain[len(chain)-1]
	}
	canon, err := h.canonical(from, label)
	if err != nil {
		return nil, err
	}
	if e, ok := h.cache[canon]; ok {
		if e.loading {
			cyc := append(chain[indexOf(chain, canon):], canon)
			names := make([]string, len(cyc))
			for i, c := range cyc {
				names[i] = DisplayName(c)
			}
			return nil, fmt.Errorf("load cycle: %s", strings.Join(names, " → "))
		}
		return e.globals, e.err
	}
	e := &entry{loading: true}
	h.cache[canon] = e
	src, err := h.read(canon)
	if err == nil {
		e.globals, err = h.exec(parent, append(chain, canon), canon, src)
	}
	e.err, e.loading = err, false
	h.order = append(h.order, canon)
	return e.globals, err
}

func indexOf(list []string, s string) int {
	for i, e := range list {
		if e == s {
			return i
		}
	}
	return 0
}

func (h *Host) exec(parent *starlark.Thread, chain []string, label string, src []byte) (starlark.StringDict, error) {
	thread := &starlark.Thread{
		Name: label,
		Load: func(t *starlark.Thread, module string) (starlark.StringDict, error) {
			return h.load(t, chain, module)
		},
		Print: func(t *starlark.Thread, msg string) {
			if h.Print != nil {
				h.Print(t.CallFrame(1).Pos.String(), h.redact(msg))
			}
		},
	}
	if h.SetupThread != nil {
		h.SetupThread(thread)
	}
	h.budget.begin(thread)
	globals, err := h.execFile(thread, DisplayName(label), src)
	h.budget.end(thread, parent)
	if err != nil {
		return nil, h.describe(err)
	}
	return globals, nil
}

// Syntax returns the syntax tree of the module shown as display in
// positions, as it was evaluated, or nil before it was: builtins use it to
// point an error at the offending keyword rather than at the call.
func (h *Host) Syntax(display string) *syntax.File {
	h.syntaxMu.Lock()
	defer h.syntaxMu.Unlock()
	return h.syntax[display]
}

// execFile is starlark.ExecFileOptions with the Transform applied; it keeps
// each file's tree for Syntax.
func (h *Host) execFile(thread *starlark.Thread, name string, src []byte) (starlark.StringDict, error) {
	f, err := FileOptions.Parse(name, src, 0)
	if err != nil {
		return nil, err
	}
	if h.Transform != nil {
		h.Transform(f)
	}
	h.syntaxMu.Lock()
	if h.syntax == nil {
		h.syntax = map[string]*syntax.File{}
	}
	h.syntax[name] = f
	h.syntaxMu.Unlock()
	prog, err := starlark.FileProgram(f, h.Predeclared.Has)
	if err != nil {
		return nil, err
	}
	g, err := prog.Init(thread, h.Predeclared)
	g.Freeze()
	return g, err
}

func (h *Host) redact(s string) string {
	if h.Redact == nil {
		return s
	}
	return h.Redact(s)
}

// describe is Describe, with the error's text redacted.
func (h *Host) describe(err error) error {
	err = Describe(err)
	if h.Redact == nil {
		return err
	}
	var e *Error
	if errors.As(err, &e) {
		out := &Error{Pos: e.Pos, Msg: h.Redact(e.Msg)}
		for _, b := range e.Backtrace {
			out.Backtrace = append(out.Backtrace, h.Redact(b))
		}
		return out
	}
	return errors.New(h.Redact(err.Error()))
}

// Error is an evaluation error with where it happened.
type Error struct {
	// Pos is the innermost "file:line:col" in a description, or "".
	Pos string
	// Msg says what went wrong.
	Msg string
	// Backtrace lists the calls that led there, innermost last, when there
	// was more than one frame.
	Backtrace []string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Pos != "" {
		b.WriteString(e.Pos + ": ")
	}
	b.WriteString(e.Msg)
	if len(e.Backtrace) > 1 {
		b.WriteString("\nbacktrace (most recent call last):")
		for _, f := range e.Backtrace {
			b.WriteString("\n  " + f)
		}
	}
	return b.String()
}

// Describe turns a Starlark error into an *Error with positions; other
// errors pass through.
func Describe(err error) error {
	var se syntax.Error
	if errors.As(err, &se) {
		return &Error{Pos: se.Pos.String(), Msg: "syntax error: " + se.Msg}
	}
	var rl resolve.ErrorList
	if errors.As(err, &rl) && len(rl) > 0 {
		msgs := make([]string, len(rl))
		for i, r := range rl {
			msgs[i] = r.Pos.String() + ": " + r.Msg
		}
		first := rl[0]
		out := &Error{Pos: first.Pos.String(), Msg: first.Msg}
		if len(rl) > 1 {
			out.Msg += "\n" + strings.Join(msgs[1:], "\n")
		}
		return out
	}
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		out := &Error{Msg: ee.Msg}
		// A failed load() carries the loaded module's error as its cause:
		// splice that module's frames under this one's.
		var inner *Error
		if errors.As(ee.Unwrap(), &inner) {
			out.Msg = inner.Msg
		}
		for _, fr := range ee.CallStack {
			if fr.Pos.Filename() == "<builtin>" || !fr.Pos.IsValid() {
				continue
			}
			out.Backtrace = append(out.Backtrace, fmt.Sprintf("%s: in %s", fr.Pos, fr.Name))
			out.Pos = fr.Pos.String()
		}
		if inner != nil {
			out.Backtrace = append(out.Backtrace, inner.Backtrace...)
			if len(inner.Backtrace) == 0 && inner.Pos != "" {
				out.Backtrace = append(out.Backtrace, inner.Pos+": in <toplevel>")
			}
			if inner.Pos != "" {
				out.Pos = inner.Pos
			}
		}
		return out
	}
	return err
}
