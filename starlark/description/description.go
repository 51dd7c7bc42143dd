// Package description evaluates an imgbuild description into a checked
// build graph: it finds the workspace, reads imgbuild.mod, evaluates the
// file and its modules with the builtins, and runs the checks that need the
// whole description (undeclared variables, edges, cycles). It is what the
// command line, the tests and the benchmarks call.
package description

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/imgbuild/imgbuild/builtins"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/starlark/host"
	"github.com/imgbuild/imgbuild/stdlib"
	"go.starlark.net/starlark"
)

// Options say what to evaluate and with which inputs.
type Options struct {
	// File is the description to evaluate.
	File string
	// Registry holds the drivers.
	Registry *engine.Registry
	// Vars are values from --var and --var-file.
	Vars map[string]builtins.VarValue
	// Getenv reads IMGBUILD_VAR_<name>; nil means none.
	Getenv func(string) (string, bool)
	// Print receives print() output; nil discards it.
	Print func(pos, msg string)
	// Warn receives warnings, such as a var-file setting a variable the
	// description does not declare; nil discards them.
	Warn func(msg string)
	// StrictVars makes such a variable an error.
	StrictVars bool
	// Stdlib overrides the embedded standard library (tests).
	Stdlib fs.FS
	// MaxSteps bounds computation, the description and its modules
	// together; 0 means the host's default.
	MaxSteps uint64
	// MaxMemory bounds the memory evaluation holds, in bytes; 0 means the
	// host's default (2 GiB).
	MaxMemory uint64
}

// Description is an evaluated description.
type Description struct {
	// Root is the workspace root: the directory holding imgbuild.mod, else
	// the file's directory.
	Root string
	// File is the description's path relative to Root.
	File string
	// Graph holds the builds; it has passed Check.
	Graph *engine.Graph
	// Variables are the declared variables, secrets hidden.
	Variables []builtins.Variable
	// Secrets are the values of sensitive variables, for redaction.
	Secrets []string
	// Globals are the description's top-level names, frozen; Builtins the
	// names every module sees (imgbuild console evaluates over both).
	Globals, Builtins starlark.StringDict
	// Redact hides every sensitive value (and its placeholders) in text
	// shown to the user.
	Redact func(string) string
	// Modules lists every module evaluated.
	Modules []string
	// State is where imgbuild.mod keeps the builds' records ("" for the
	// workspace's .imgbuild/state.json).
	State string
}

// Load evaluates opts.File. Errors name file, line and column.
func Load(opts Options) (*Description, error) {
	root, err := host.FindRoot(opts.File)
	if err != nil {
		return nil, err
	}
	mod, err := host.ReadModFile(root)
	if err != nil {
		return nil, err
	}
	mods := mod.Modules
	lib := opts.Stdlib
	if lib == nil {
		lib = stdlib.FS
	}
	h := &host.Host{Root: root, Stdlib: lib, Modules: mods, Print: opts.Print, MaxSteps: opts.MaxSteps, MaxMemory: opts.MaxMemory}
	rec := builtins.New(builtins.Options{
		Registry:   opts.Registry,
		Vars:       opts.Vars,
		Getenv:     opts.Getenv,
		Resolve:    h.Resolve,
		Boundary:   h.Boundary,
		Root:       root,
		Warn:       opts.Warn,
		StrictVars: opts.StrictVars,
		Syntax:     h.Syntax,
	})
	h.Predeclared = rec.Predeclared()
	h.Transform = builtins.RewriteFormatting
	h.Redact = rec.Redact
	globals, err := h.Exec(opts.File)
	if err != nil {
		// What the builtins collected comes first, then the error that
		// stopped the evaluation.
		if list := rec.Errors(); len(list) > 0 {
			list = append(list, err)
			return nil, redactList(list, rec.Redact)
		}
		return nil, err
	}
	if err := rec.Finish(); err != nil {
		var list builtins.ErrorList
		if errors.As(err, &list) {
			return nil, redactList(list, rec.Redact)
		}
		return nil, errors.New(rec.Redact(err.Error()))
	}
	// What the builds write may touch neither the description nor what
	// any build reads, nor what another build writes.
	files := []string{filepath.Join(root, host.ModFile)}
	for _, label := range h.Loaded() {
		if p, ok := h.Resolve(host.DisplayName(label)); ok {
			files = append(files, p)
		}
	}
	if err := engine.CheckOutputs(rec.Graph, rec.Registry(), root, files); err != nil {
		return nil, errors.New(rec.Redact(err.Error()))
	}
	abs, _ := filepath.Abs(opts.File)
	rel, _ := filepath.Rel(root, abs)
	return &Description{
		Root:      root,
		File:      rel,
		Graph:     rec.Graph,
		Variables: rec.Variables(),
		Secrets:   rec.Secrets(),
		Modules:   h.Loaded(),
		Globals:   globals,
		Builtins:  h.Predeclared,
		Redact:    rec.Redact,
		State:     mod.State,
	}, nil
}

// redactList redacts every error of a list, keeping it a list.
func redactList(list builtins.ErrorList, redact func(string) string) builtins.ErrorList {
	out := make(builtins.ErrorList, len(list))
	for i, e := range list {
		out[i] = errors.New(redact(e.Error()))
	}
	return out
}
