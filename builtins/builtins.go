// Package builtins defines every function a description can call. Builder
// calls (local, amazon_ebs, ...) record build nodes into an engine.Graph and
// return handles; provisioners (shell, file, ...) and post-processors
// (manifest, checksum, ...) return plain values; var() reads variables.
//
// Every builtin is made from the schema its driver declares, so keyword
// checking, types, defaults and documentation come from one declaration.
// Errors read "name: for parameter x: ..." and Starlark adds the position.
// The package knows nothing of SDKs or networks: drivers are reached only
// through the engine.Registry.
//
// builtins.go is over 500 lines: it holds the Recorder and the builder
// builtin, whose handling of every keyword (name, provisioners,
// error_cleanup, post, depends_on, settings) reads as one function with its
// helpers.
package builtins

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
	"github.com/imgbuild/imgbuild/engine/workspace"
	"go.starlark.net/lib/math"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// Options configure a Recorder.
type Options struct {
	// Registry holds the drivers whose builtins are offered.
	Registry *engine.Registry
	// Vars are variable values given on the command line or in var-files.
	Vars map[string]VarValue
	// Getenv looks up IMGBUILD_VAR_<name>; nil means no environment.
	Getenv func(string) (string, bool)
	// Resolve maps a file name as shown in positions to its path on disk
	// (host.Host.Resolve); ok is false for files with no directory (the
	// standard library), whose relative paths are taken from Root.
	Resolve func(display string) (path string, ok bool)
	// Boundary returns the directory a module's paths must stay in.
	Boundary func(display string) string
	// Root is the workspace root.
	Root string
	// Warn receives warnings (a var-file setting an undeclared variable);
	// nil discards them.
	Warn func(msg string)
	// StrictVars makes a var-file's undeclared variable an error.
	StrictVars bool
	// Syntax returns the syntax tree of a file as shown in positions
	// (host.Host.Syntax), so that errors point at the offending keyword;
	// nil points them at the call.
	Syntax func(display string) *syntax.File
}

// VarValue is a variable's value from outside the description.
type VarValue struct {
	// Raw is a value from --var or the environment, converted to the
	// declared default's type.
	Raw string
	// JSON, if not nil, is a value from a var-file, already typed.
	JSON any
	// Source names where it came from: "--var", "vars.json".
	Source string
	// Pos is where a var-file sets it ("prod.pkrvars.hcl:3:1"). Values
	// with a Pos come from files: an undeclared one is only warned about
	// (as Packer does), unless StrictVars is set.
	Pos string
}

// Recorder is one evaluation's state: the graph being recorded and the
// variables declared.
type Recorder struct {
	opts  Options
	Graph *engine.Graph
	vars  map[string]*declaredVar
	order []string
	sens  *sensitive
	errs  ErrorList
}

type declaredVar struct {
	name, description, pos string
	value                  starlark.Value
	sensitive              bool
	// env is the environment variable var(env = ...) names; fromEnv says
	// the value came from it.
	env     string
	fromEnv bool
	// source says where the value came from: "--var", a var-file,
	// "$AWS_REGION", "its default".
	source string
}

// New returns a Recorder for one evaluation.
func New(opts Options) *Recorder {
	if opts.Registry == nil {
		opts.Registry = engine.NewRegistry()
	}
	r := &Recorder{opts: opts, Graph: engine.NewGraph(), vars: map[string]*declaredVar{}}
	r.sens = newSensitive(r.known)
	return r
}

// Predeclared returns every builtin by name.
func (r *Recorder) Predeclared() starlark.StringDict {
	d := starlark.StringDict{
		"var":           starlark.NewBuiltin("var", r.varBuiltin),
		"timestamp":     runValueBuiltin(value.RunTimestamp),
		"run_id":        runValueBuiltin(value.RunID),
		"formatdate":    starlark.NewBuiltin("formatdate", formatdate),
		"read_file":     starlark.NewBuiltin("read_file", r.readFile),
		"template_file": starlark.NewBuiltin("template_file", r.templateFile),
		"struct":        starlark.NewBuiltin("struct", starlarkstruct.Make),
		"math":          math.Module,
	}
	for name, v := range r.formatting() {
		d[name] = v
	}
	reg := r.opts.Registry
	for name, def := range reg.Builders {
		d[name] = starlark.NewBuiltin(name, r.builderBuiltin(def))
	}
	for name, def := range reg.Provisioners {
		d[name] = starlark.NewBuiltin(name, r.stepBuiltin(def.Schema, false))
	}
	for name, def := range reg.PostProcessors {
		d[name] = starlark.NewBuiltin(name, r.stepBuiltin(def.Schema, true))
	}
	for name, def := range reg.Lookups {
		d[name] = starlark.NewBuiltin(name, r.objectBuiltin(def.Schema, func(o *value.Object) starlark.Value { return &LookupValue{obj: o} }))
	}
	return d
}

// commonKeywords are accepted by every builder besides its schema's own.
var commonKeywords = engine.BuilderKeywords

var buildName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// callPos is where the builtin was called from: the first caller outside
// the standard library, so that what @stdlib//users.star makes is placed
// at the user's call of user(), not inside the module.
func callPos(thread *starlark.Thread) string {
	for i := 1; i < thread.CallStackDepth(); i++ {
		if pos := thread.CallFrame(i).Pos; !strings.HasPrefix(pos.Filename(), "@stdlib//") {
			return pos.String()
		}
	}
	return thread.CallFrame(1).Pos.String()
}

func callFile(thread *starlark.Thread) string {
	return thread.CallFrame(1).Pos.Filename()
}

func keywordsOnly(b *starlark.Builtin, args starlark.Tuple, example string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s: got %d positional argument%s, but %s takes keywords only, like %s", b.Name(), len(args), plural(len(args)), b.Name(), example)
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (r *Recorder) known(build string) bool {
	_, ok := r.Graph.Node(build)
	return ok
}

func (r *Recorder) builderBuiltin(def *engine.BuilderDef) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	s := def.Schema
	return func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := keywordsOnly(b, args, s.Name+`(name = "web", ...)`); err != nil {
			return nil, err
		}
		node := &engine.Node{Driver: s.Name, Pos: callPos(thread), Settings: value.NewMap()}
		valid := append(append([]string(nil), commonKeywords...), s.Keywords()...)
		bad := len(r.errs)
		for _, kv := range kwargs {
			kw := string(kv[0].(starlark.String))
			v := kv[1]
			var err error
			switch kw {
			case "name":
				err = r.setName(node, v)
			case "provisioners":
				node.Provisioners, err = stepList(v, false)
			case "error_cleanup":
				node.ErrorCleanup, err = stepList(v, false)
			case "tests":
				node.Tests, err = stepList(v, false)
			case "post":
				node.PostProcessors, err = stepList(v, true)
			case "depends_on":
				node.DependsOn, err = dependsOn(v, node.Pos)
			default:
				f, ok := s.Field(kw)
				if !ok {
					r.collect(thread, kw, unknownKeyword(b.Name(), kw, valid))
					continue
				}
				var sv value.Value
				sv, err = r.setting(thread, f, v, kwargs)
				if err == nil {
					node.Settings.Set(kw, sv)
				}
			}
			if err != nil {
				r.collect(thread, kw, fmt.Errorf("%s: for parameter %s: %v", b.Name(), kw, err))
			}
		}
		if node.Name == "" && len(r.errs) > bad {
			return &Handle{node: node, outs: r.opts.Registry.OutputsOf(node)}, nil // a bad name is reported already
		}
		if node.Name == "" {
			r.collect(thread, "", fmt.Errorf("%s: missing required keyword argument \"name\": every build needs a unique name", b.Name()))
			return &Handle{node: node, outs: r.opts.Registry.OutputsOf(node)}, nil
		}
		if len(r.errs) == bad {
			// Missing values are reported once the keywords themselves are right.
			cfg := s.New()
			if _, err := s.Decode(node.Settings, cfg, schema.Options{Deferred: true}); err != nil {
				r.collectDecode(thread, b.Name(), err)
			} else if len(node.Tests) > 0 {
				if err := checkTests(def, cfg); err != nil {
					r.collect(thread, "tests", fmt.Errorf("%s: for parameter tests: %v", b.Name(), err))
				}
			}
		}
		if err := r.Graph.Add(node); err != nil {
			r.collect(thread, "name", err)
		}
		return &Handle{node: node, outs: r.opts.Registry.OutputsOf(node)}, nil
	}
}

// checkTests says why a build of def with config cfg cannot have tests.
func checkTests(def *engine.BuilderDef, cfg any) error {
	if def.CheckTests == nil {
		return fmt.Errorf("%s cannot launch its images for tests yet: remove tests, or test the image in a build that uses it", def.Schema.Name)
	}
	return def.CheckTests(cfg)
}

func unknownKeyword(fn, kw string, valid []string) error {
	msg := fmt.Sprintf("%s: unexpected keyword argument %q", fn, kw)
	if near := schema.Nearest(kw, valid); near != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", near)
	}
	return fmt.Errorf("%s", msg)
}

func (r *Recorder) setName(node *engine.Node, v starlark.Value) error {
	s, ok := v.(starlark.String)
	if !ok {
		return fmt.Errorf("got %s, want string", v.Type())
	}
	if !buildName.MatchString(string(s)) {
		return fmt.Errorf("%q is not a valid build name (letters, digits, '.', '_' and '-', starting with a letter or digit)", string(s))
	}
	node.Name = string(s)
	return nil
}

func stepList(v starlark.Value, post bool) ([]*value.Object, error) {
	want := "provisioner such as shell(...) or file(...)"
	if post {
		want = "post-processor such as manifest(...) or checksum(...)"
	}
	seq, ok := v.(starlark.Indexable)
	if _, isStr := v.(starlark.String); !ok || isStr {
		return nil, fmt.Errorf("got %s, want a list of %ss", v.Type(), strings.SplitN(want, " ", 2)[0])
	}
	var out []*value.Object
	for i := 0; i < seq.Len(); i++ {
		e := seq.Index(i)
		if inner, ok := e.(*starlark.List); ok {
			// A nested list (a module returning several steps) is spliced in.
			objs, err := stepList(inner, post)
			if err != nil {
				return nil, fmt.Errorf("element %d: %v", i, err)
			}
			out = append(out, objs...)
			continue
		}
		sv, ok := e.(*StepValue)
		if !ok || sv.post != post {
			return nil, fmt.Errorf("element %d: got %s, want a %s", i, e.Type(), want)
		}
		out = append(out, sv.obj)
	}
	return out, nil
}

func dependsOn(v starlark.Value, pos string) ([]engine.Dependency, error) {
	seq, ok := v.(starlark.Indexable)
	if _, isStr := v.(starlark.String); !ok || isStr {
		return nil, fmt.Errorf("got %s, want a list of builds (handles or names)", v.Type())
	}
	var out []engine.Dependency
	for i := 0; i < seq.Len(); i++ {
		switch e := seq.Index(i).(type) {
		case *Handle:
			out = append(out, engine.Dependency{Build: e.Name(), Pos: pos})
		case starlark.String:
			out = append(out, engine.Dependency{Build: string(e), Pos: pos})
		default:
			return nil, fmt.Errorf("element %d: got %s, want a build or a build's name", i, e.Type())
		}
	}
	return out, nil
}

// setting converts one keyword's value, resolving and checking paths for
// fields declared with a path tag (unless the call's other keywords say the
// path is not a local one).
func (r *Recorder) setting(thread *starlark.Thread, f *schema.Field, v starlark.Value, kwargs []starlark.Tuple) (value.Value, error) {
	sv, err := convert(v, r.sens)
	if err != nil {
		return nil, err
	}
	if f.Path == schema.PathNone {
		return sv, nil
	}
	if unless := f.PathUnless; unless[0] != "" && callSets(kwargs, unless) {
		return sv, nil
	}
	if only := f.PathIf; only[0] != "" && !callSets(kwargs, only) {
		return sv, nil
	}
	return r.paths(thread, f, sv)
}

// callSets reports whether the call's keywords set kv[0] to the string
// kv[1].
func callSets(kwargs []starlark.Tuple, kv [2]string) bool {
	for _, a := range kwargs {
		if s, ok := a[1].(starlark.String); ok && string(a[0].(starlark.String)) == kv[0] && string(s) == kv[1] {
			return true
		}
	}
	return false
}

// paths makes every plain string in v an absolute path that must exist
// inside the workspace (or the calling module's directory), or anywhere on
// this machine for fields that allow it.
func (r *Recorder) paths(thread *starlark.Thread, f *schema.Field, v value.Value) (value.Value, error) {
	switch x := v.(type) {
	case value.String:
		if f.IsURL(x.S) {
			return v, nil
		}
		p, err := r.path(thread, f, x.S)
		if err != nil {
			return nil, err
		}
		return value.String{S: p, Sensitive: x.Sensitive}, nil
	case value.List:
		out := make(value.List, len(x))
		for i, e := range x {
			pe, err := r.paths(thread, f, e)
			if err != nil {
				return nil, err
			}
			out[i] = pe
		}
		return out, nil
	}
	return v, nil
}

// path resolves p: "//x" from the workspace root, else relative to the
// calling file's directory. It must stay inside the workspace, through
// ".." and symbolic links alike, and exist. An output path is relative to
// the workspace root, need not exist yet, and is kept as written.
func (r *Recorder) path(thread *starlark.Thread, f *schema.Field, p string) (string, error) {
	kind := f.Path
	if kind.IsOutput() {
		p = strings.TrimPrefix(p, "//")
		if _, err := output.CheckPath(r.opts.Root, p); err != nil {
			return "", err
		}
		return p, nil
	}
	file := callFile(thread)
	dir, boundary := r.opts.Root, r.opts.Root
	if r.opts.Resolve != nil {
		if abs, ok := r.opts.Resolve(file); ok {
			dir = filepath.Dir(abs)
		}
	}
	if r.opts.Boundary != nil {
		if b := r.opts.Boundary(file); b != "" {
			boundary = b
		}
	}
	var abs string
	trailing := strings.HasSuffix(p, "/") && len(p) > 1
	switch {
	case strings.HasPrefix(p, "//"):
		abs = filepath.Join(r.opts.Root, filepath.FromSlash(p[2:]))
		boundary = r.opts.Root
	case f.PathAnywhere && strings.HasPrefix(p, "~/"):
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("%q: cannot find the home directory: %v", p, err)
		}
		abs = filepath.Join(home, p[2:])
	case filepath.IsAbs(p):
		abs = filepath.Clean(p)
	default:
		abs = filepath.Join(dir, filepath.FromSlash(p))
	}
	if rel, err := filepath.Rel(boundary, abs); !f.PathAnywhere && (err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator))) {
		return "", fmt.Errorf("%q is outside the workspace %s; descriptions may only read files inside it", p, boundary)
	}
	if !f.PathAnywhere {
		var esc *workspace.EscapeError
		if _, err := workspace.Resolve(boundary, abs); errors.As(err, &esc) {
			esc.Path = p
			return "", fmt.Errorf("%v; descriptions may only read files inside the workspace", esc)
		}
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("%q does not exist (looked for %s)", p, abs)
	}
	switch {
	case kind == schema.PathFile && st.IsDir():
		return "", fmt.Errorf("%q is a directory, want a file", p)
	case kind == schema.PathDir && !st.IsDir():
		return "", fmt.Errorf("%q is a file, want a directory", p)
	}
	if trailing {
		abs += "/"
	}
	return abs, nil
}

func (r *Recorder) stepBuiltin(s *schema.Schema, post bool) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return r.objectBuiltin(s, func(o *value.Object) starlark.Value { return &StepValue{obj: o, post: post} })
}

// nameKeyword is the keyword every provisioner takes besides its schema's
// own: the name a test (or a provisioner) is shown and reported by.
const nameKeyword = "name"

// objectName sets o's name from a name = "..." keyword.
func objectName(o *value.Object, v starlark.Value) error {
	s, ok := v.(starlark.String)
	if !ok {
		return fmt.Errorf("got %s, want string", v.Type())
	}
	name := strings.TrimSpace(string(s))
	if name == "" || strings.ContainsAny(name, "\n\r") {
		return fmt.Errorf("%q is not a name: give a non-empty line of text, such as \"nginx answers on port 80\"", string(s))
	}
	o.Name = name
	return nil
}

// objectBuiltin makes a builtin that checks its keywords against s and
// returns the value wrap makes of the resulting object.
func (r *Recorder) objectBuiltin(s *schema.Schema, wrap func(*value.Object) starlark.Value) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		example := s.Name + "(...)"
		if len(s.Fields) > 0 {
			example = s.Name + "(" + s.Fields[0].Keyword + " = ...)"
		}
		if err := keywordsOnly(b, args, example); err != nil {
			return nil, err
		}
		obj := &value.Object{Kind: s.Name, Pos: callPos(thread)}
		_, provisioner := r.opts.Registry.Provisioners[s.Name]
		valid := s.Keywords()
		if provisioner {
			valid = append(valid, nameKeyword)
		}
		bad := len(r.errs)
		for _, kv := range kwargs {
			kw := string(kv[0].(starlark.String))
			f, ok := s.Field(kw)
			if !ok && provisioner && kw == nameKeyword {
				if err := objectName(obj, kv[1]); err != nil {
					r.collect(thread, kw, fmt.Errorf("%s: for parameter %s: %v", b.Name(), kw, err))
				}
				continue
			}
			if !ok {
				r.collect(thread, kw, unknownKeyword(b.Name(), kw, valid))
				continue
			}
			sv, err := r.setting(thread, f, kv[1], kwargs)
			if err != nil {
				r.collect(thread, kw, fmt.Errorf("%s: for parameter %s: %v", b.Name(), kw, err))
				continue
			}
			obj.Fields.Set(kw, sv)
		}
		if len(r.errs) == bad {
			if _, err := s.Decode(&obj.Fields, s.New(), schema.Options{Deferred: true}); err != nil {
				r.collectDecode(thread, b.Name(), err)
			}
		}
		return wrap(obj), nil
	}
}

// Finish runs the checks that need the whole description: every variable
// given from outside was declared, and the graph's edges and cycles. A
// var-file's undeclared variable is a warning, as in Packer (shared var
// files set more than one description uses), unless StrictVars is set.
func (r *Recorder) Finish() error {
	if len(r.errs) > 0 {
		// The graph of a description with mistakes would only add
		// errors that follow from them.
		return r.errs
	}
	for _, name := range slices.Sorted(maps.Keys(r.opts.Vars)) {
		if _, ok := r.vars[name]; ok {
			continue
		}
		given := r.opts.Vars[name]
		where := given.Source
		if given.Pos != "" {
			where = given.Pos
		}
		msg := fmt.Sprintf("%s: variable %q is not declared in the description", where, name)
		if near := schema.Nearest(name, r.order); near != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", near)
		}
		if given.Pos != "" && !r.opts.StrictVars {
			if r.opts.Warn != nil {
				r.opts.Warn(msg + "; it is ignored (--strict-vars makes this an error)")
			}
			continue
		}
		if len(r.order) > 0 {
			msg += "; declared: " + strings.Join(r.order, ", ")
		} else {
			msg += "; it declares no variables (declare one with var(\"" + name + "\", default = ...))"
		}
		return fmt.Errorf("%s", msg)
	}
	return r.Graph.Check(r.opts.Registry)
}

// Redact hides, in text the evaluation shows (errors, print output), every
// sensitive string it made and the markers that stand for them.
func (r *Recorder) Redact(text string) string { return r.sens.Redact(text) }

// Registry is the registry the builtins were made from.
func (r *Recorder) Registry() *engine.Registry { return r.opts.Registry }

// Secrets returns the values of every sensitive variable.
func (r *Recorder) Secrets() []string {
	var out []string
	for _, name := range r.order {
		v := r.vars[name]
		if s, ok := v.value.(*Secret); ok && v.sensitive {
			out = append(out, s.s)
		}
	}
	return out
}

// SecretValues maps each sensitive variable to its value, for what must
// compare secrets without showing them (a saved plan keeps keyed digests
// of them).
func (r *Recorder) SecretValues() map[string]string {
	out := map[string]string{}
	for _, name := range r.order {
		v := r.vars[name]
		if s, ok := v.value.(*Secret); ok && v.sensitive {
			out[name] = s.s
		}
	}
	return out
}

// Variables describes the declared variables, in declaration order, with
// sensitive values hidden.
func (r *Recorder) Variables() []Variable {
	var out []Variable
	for _, name := range r.order {
		v := r.vars[name]
		shown := v.value.String()
		if v.sensitive {
			shown = "(sensitive)"
		}
		out = append(out, Variable{Name: name, Description: v.description, Value: shown, Pos: v.pos, Sensitive: v.sensitive, Source: v.source, Env: v.env, FromEnv: v.fromEnv})
	}
	return out
}

// Variable is a declared variable as the plan shows it.
type Variable struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Value       string `json:"value"`
	Pos         string `json:"position"`
	Sensitive   bool   `json:"sensitive,omitempty"`
	// Source says where the value came from: "--var", a var-file,
	// "$AWS_REGION", "its default".
	Source string `json:"source"`
	// Env is the environment input var(env = ...) declares; FromEnv says
	// the value came from it.
	Env     string `json:"env,omitempty"`
	FromEnv bool   `json:"from_env,omitempty"`
}

// Shown is how the plan shows where a variable's value came from, for an
// environment input: "($AWS_REGION)", or "($AWS_REGION not set: the
// default)"; "" for the others.
func (v Variable) Shown() string {
	switch {
	case v.Env == "":
		return ""
	case v.FromEnv:
		return "($" + v.Env + ")"
	}
	return "($" + v.Env + " not set: from " + v.Source + ")"
}
