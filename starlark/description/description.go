// Package description evaluates an imgbuild description into a checked
// build graph: it finds the workspace, reads imgbuild.mod, evaluates the
// file and its modules with the builtins, and runs the checks that need the
// whole description (undeclared variables, edges, cycles). It is what the
// command line, the tests and the benchmarks call.
//
// description_test.go is over 500 lines: it is the table of what a
// description may and may not say, one case a row, read as a whole.
package description

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/imgbuild/imgbuild/builtins"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/starlark/host"
	"github.com/imgbuild/imgbuild/starlark/modules"
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
	// Context bounds fetching modules; nil means context.Background().
	Context context.Context
	// Locked makes a missing or stale imgbuild.lock an error (--locked);
	// without it, what the lock lacks is resolved for this evaluation and
	// a warning says to run imgbuild mod download.
	Locked bool
	// ModuleCache is the module cache's directory; "" means
	// modules.DefaultCacheDir().
	ModuleCache string
	// Progress receives what fetching modules does; nil discards it.
	Progress func(msg string)
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
	// SecretValues maps each sensitive variable to its value, for keyed
	// digests (a saved plan compares them without holding them).
	SecretValues map[string]string
	// Sources are the files of the workspace the evaluation read, as
	// absolute paths: the description, what it loads from the workspace,
	// and imgbuild.mod and imgbuild.lock when they exist. External
	// modules count through ModuleHashes.
	Sources []string
	// Globals are the description's top-level names, frozen; Builtins the
	// names every module sees (imgbuild console evaluates over both).
	Globals, Builtins starlark.StringDict
	// Redact hides every sensitive value (and its placeholders) in text
	// shown to the user.
	Redact func(string) string
	// Modules lists every module evaluated.
	Modules []string
	// ModuleHashes maps each external module the description loaded a
	// file from (by canonical name) to its content hash
	// (modules.HashTree): what build fingerprints count of it.
	ModuleHashes map[string]string
	// ModuleDirs maps those modules' directories to their label prefix
	// ("@platform//"), so that what is read from them is named the same
	// on every machine, wherever the module cache is.
	ModuleDirs map[string]string
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
	graph, err := resolveModules(root, mod, opts)
	if err != nil {
		return nil, err
	}
	lib := opts.Stdlib
	if lib == nil {
		lib = stdlib.FS
	}
	h := &host.Host{Root: root, Stdlib: lib, Print: opts.Print, MaxSteps: opts.MaxSteps, MaxMemory: opts.MaxMemory}
	if graph != nil {
		h.Modules, h.Deps = graph.HostModules(), graph.Deps
	}
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
	hashes, dirs := loadedModules(graph, h.Loaded())
	return &Description{
		Sources:      sources(root, h.Loaded()),
		SecretValues: rec.SecretValues(),
		ModuleHashes: hashes,
		ModuleDirs:   dirs,
		Root:         root,
		File:         rel,
		Graph:        rec.Graph,
		Variables:    rec.Variables(),
		Secrets:      rec.Secrets(),
		Modules:      h.Loaded(),
		Globals:      globals,
		Builtins:     h.Predeclared,
		Redact:       rec.Redact,
		State:        mod.State,
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

// resolveModules resolves the workspace's modules at their locked
// versions (nil when it declares none and has no lock). A lock that lacks
// something is completed for this evaluation only, with a warning; with
// Locked it is an error.
func resolveModules(root string, mod *host.Mod, opts Options) (*modules.Graph, error) {
	lock, err := modules.ReadLock(root)
	if err != nil {
		return nil, err
	}
	if len(mod.Deps) == 0 && lock == nil {
		return nil, nil
	}
	dir := opts.ModuleCache
	if dir == "" {
		if dir, err = modules.DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	g, err := modules.Resolve(ctx, modules.Options{Root: root, Cache: &modules.Cache{Dir: dir}, Locked: opts.Locked, Progress: opts.Progress})
	if err != nil {
		return nil, err
	}
	if changes := g.LockChanges(); len(changes) > 0 && opts.Warn != nil {
		opts.Warn(fmt.Sprintf("%s is not up to date with %s; this run uses:\n  %s\nrun imgbuild mod download to write it (--locked makes this an error)", modules.LockFile, host.ModFile, strings.Join(changes, "\n  ")))
	}
	return g, nil
}

// loadedModules returns the content hash and directory of every module
// a file was loaded from.
func loadedModules(g *modules.Graph, labels []string) (hashes, dirs map[string]string) {
	if g == nil {
		return nil, nil
	}
	hashes, dirs = map[string]string{}, map[string]string{}
	for _, l := range labels {
		if !strings.HasPrefix(l, "@") || strings.HasPrefix(l, "@stdlib//") {
			continue
		}
		name, _, _ := strings.Cut(l[1:], "//")
		if m, ok := g.Modules[name]; ok {
			hashes[name] = m.Hash
			dirs[m.Dir] = "@" + name + "//"
		}
	}
	return hashes, dirs
}

// sources lists the workspace files an evaluation read: imgbuild.mod and
// imgbuild.lock when they exist, then every module loaded from the
// workspace (labels "//..."), in load order.
func sources(root string, labels []string) []string {
	var out []string
	for _, f := range []string{host.ModFile, modules.LockFile} {
		if p := filepath.Join(root, f); fileExists(p) {
			out = append(out, p)
		}
	}
	for _, l := range labels {
		if strings.HasPrefix(l, "//") {
			out = append(out, filepath.Join(root, filepath.FromSlash(l[2:])))
		}
	}
	return out
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
