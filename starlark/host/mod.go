package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// FindRoot returns the workspace root for the description at file: the
// nearest directory at or above it holding imgbuild.mod, else the file's
// own directory.
func FindRoot(file string) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(abs)
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, ModFile)); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return dir, nil
		}
	}
}

var moduleName = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// ReadMod reads root/imgbuild.mod, if any, and returns the external modules
// it declares: module(name = "shared", path = "../shared-modules") maps
// @shared// to that directory (relative to root). A missing file declares
// none.
func ReadMod(root string) (map[string]string, error) {
	m, err := ReadModFile(root)
	if err != nil {
		return nil, err
	}
	return m.Modules, nil
}

// Mod is what imgbuild.mod declares.
type Mod struct {
	// Modules maps an external module's name to its directory.
	Modules map[string]string
	// State is where the builds' records are kept, when not in the
	// workspace: state(location = "s3://bucket/prefix"), which --state
	// overrides.
	State string
}

// ReadModFile reads root/imgbuild.mod, if any: module(...) and state(...)
// declarations.
func ReadModFile(root string) (*Mod, error) {
	file := filepath.Join(root, ModFile)
	m := &Mod{Modules: map[string]string{}}
	src, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	mods := m.Modules
	state := starlark.NewBuiltin("state", func(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var location string
		if err := starlark.UnpackArgs("state", args, kwargs, "location", &location); err != nil {
			return nil, err
		}
		if m.State != "" {
			return nil, fmt.Errorf("state: declared twice")
		}
		if location == "" {
			return nil, fmt.Errorf("state: location is empty: give s3://bucket/prefix, or leave state(...) out to keep state in .imgbuild/state.json")
		}
		m.State = location
		return starlark.None, nil
	})
	module := starlark.NewBuiltin("module", func(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var name, path string
		if len(args) > 0 {
			return nil, fmt.Errorf("module: takes keywords only, like module(name = \"shared\", path = \"../shared\")")
		}
		if err := starlark.UnpackArgs("module", args, kwargs, "name", &name, "path", &path); err != nil {
			return nil, err
		}
		if !moduleName.MatchString(name) || name == "stdlib" {
			return nil, fmt.Errorf("module: name %q must be lower-case letters, digits, _ or -, and not \"stdlib\"", name)
		}
		if _, dup := mods[name]; dup {
			return nil, fmt.Errorf("module: %q is declared twice", name)
		}
		dir := path
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(root, dir)
		}
		st, err := os.Stat(dir)
		if err != nil || !st.IsDir() {
			return nil, fmt.Errorf("module: %q: directory %s does not exist", name, dir)
		}
		mods[name] = dir
		return starlark.None, nil
	})
	thread := &starlark.Thread{Name: ModFile}
	thread.SetMaxExecutionSteps(1_000_000)
	_, err = starlark.ExecFileOptions(FileOptions, thread, ModFile, src, starlark.StringDict{
		"module": module,
		"state":  state,
		"struct": starlark.NewBuiltin("struct", starlarkstruct.Make),
	})
	if err != nil {
		return nil, Describe(err)
	}
	return m, nil
}
