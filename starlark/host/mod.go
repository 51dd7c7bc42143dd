package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"go.starlark.net/starlark"
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

var (
	moduleName = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	sha256Hex  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ValidName reports whether s may name a module: lower-case letters,
// digits, _ and -, starting with a letter, and not "stdlib".
func ValidName(s string) bool { return moduleName.MatchString(s) && s != "stdlib" }

// Mod is what an imgbuild.mod declares: the module's own name, its
// dependencies and, in a workspace's, where builds are recorded.
type Mod struct {
	// Name is module(name = ...): the name the module is known by to
	// every module that depends on it, whatever each calls it. "" when
	// not declared.
	Name string
	// Deps are the dep(...) declarations, in order.
	Deps []Dep
	// State is where the builds' records are kept, when not in the
	// workspace: state(location = "s3://bucket/prefix"), which --state
	// overrides. Only the workspace's own imgbuild.mod is read for it.
	State string
}

// Dep is one dep(...) of an imgbuild.mod. Exactly one of Git, URL and
// (alone) Path says where the module comes from.
type Dep struct {
	// Name is what the declaring module loads it by: @Name//file.star.
	Name string
	// Git is a URL the git binary understands (https://…, ssh://…,
	// git@host:org/repo, a local path), passed to git unchanged; Ref the
	// tag, branch or commit to take.
	Git, Ref string
	// URL is an archive (.tar.gz) to download; SHA256 the hex digest the
	// archive must have.
	URL, SHA256 string
	// Path is, with Git or URL, the module's directory inside the
	// repository or archive ("" for its top); alone, the module's
	// directory on disk, relative to the declaring module's directory.
	Path string
	// Pos is where the dep(...) call is: "imgbuild.mod:3:1".
	Pos string
}

// Kind is "git", "url" or "path".
func (d Dep) Kind() string {
	switch {
	case d.Git != "":
		return "git"
	case d.URL != "":
		return "url"
	}
	return "path"
}

// Source describes where the dependency comes from, for messages:
// "git https://host/repo ref v1.2.0 path modules".
func (d Dep) Source() string {
	var s string
	switch d.Kind() {
	case "git":
		s = fmt.Sprintf("git %s ref %s", d.Git, d.Ref)
	case "url":
		s = "url " + d.URL
	default:
		return "path " + d.Path
	}
	if d.Path != "" {
		s += " path " + d.Path
	}
	return s
}

// ReadModFile reads dir/imgbuild.mod; a missing file declares nothing.
func ReadModFile(dir string) (*Mod, error) {
	src, err := os.ReadFile(filepath.Join(dir, ModFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &Mod{}, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseMod(ModFile, src)
}

// ParseMod parses the text of an imgbuild.mod; file names it in
// positions. It reads nothing from disk: whether a path dependency exists
// is for the caller to check.
//
//	module(name = "platform")
//	dep("hardening", git = "git@github.com:acme/hardening.git", ref = "v1.2.0", path = "modules")
//	dep("base", url = "https://example.com/base-1.0.tar.gz", sha256 = "…")
//	dep("local", path = "../shared")
//	state(location = "s3://bucket/prefix")
func ParseMod(file string, src []byte) (*Mod, error) {
	m := &Mod{}
	names := map[string]string{} // dep name → where declared
	module := starlark.NewBuiltin("module", func(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		for _, kv := range kwargs {
			if k, _ := starlark.AsString(kv[0]); k == "path" {
				return nil, fmt.Errorf("module: module(name, path) declares this module's own name now; a dependency is dep(name = ..., path = ...)")
			}
		}
		var name string
		if err := starlark.UnpackArgs("module", args, kwargs, "name", &name); err != nil {
			return nil, err
		}
		if m.Name != "" {
			return nil, fmt.Errorf("module: declared twice (first as %q)", m.Name)
		}
		if !ValidName(name) {
			return nil, fmt.Errorf("module: name %q must be lower-case letters, digits, _ or -, start with a letter, and not be \"stdlib\"", name)
		}
		m.Name = name
		return starlark.None, nil
	})
	dep := starlark.NewBuiltin("dep", func(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var d Dep
		if err := starlark.UnpackArgs("dep", args, kwargs, "name", &d.Name, "git?", &d.Git, "ref?", &d.Ref, "url?", &d.URL, "sha256?", &d.SHA256, "path?", &d.Path); err != nil {
			return nil, err
		}
		d.Pos = t.CallFrame(1).Pos.String()
		if d.Path != "" && (d.Git != "" || d.URL != "") {
			if d.Path = path.Clean(d.Path); d.Path == "." {
				d.Path = ""
			}
		}
		if err := CheckDep(d); err != nil {
			return nil, err
		}
		if at, dup := names[d.Name]; dup {
			return nil, fmt.Errorf("dep: %q is declared twice (first at %s)", d.Name, at)
		}
		names[d.Name] = d.Pos
		m.Deps = append(m.Deps, d)
		return starlark.None, nil
	})
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
	thread := &starlark.Thread{Name: file}
	thread.SetMaxExecutionSteps(1_000_000)
	_, err := starlark.ExecFileOptions(FileOptions, thread, file, src, starlark.StringDict{
		"module": module,
		"dep":    dep,
		"state":  state,
	})
	if err != nil {
		return nil, Describe(err)
	}
	return m, nil
}

// CheckDep checks one dependency on its own: its name, that one source is
// given, and that its fields fit that source.
func CheckDep(d Dep) error {
	q := fmt.Sprintf("dep %q", d.Name)
	if !ValidName(d.Name) {
		return fmt.Errorf("dep: name %q must be lower-case letters, digits, _ or -, start with a letter, and not be \"stdlib\"", d.Name)
	}
	switch {
	case d.Git != "" && d.URL != "":
		return fmt.Errorf("%s: give git or url, not both", q)
	case d.Git == "" && d.URL == "" && d.Path == "":
		return fmt.Errorf("%s: say where it comes from: git = URL and ref = tag, branch or commit; url = an archive and sha256; or path = a directory", q)
	}
	switch d.Kind() {
	case "git":
		if strings.HasPrefix(d.Git, "-") || strings.ContainsAny(d.Git, "\x00\n") {
			return fmt.Errorf("%s: git %q is not a repository URL", q, d.Git)
		}
		if d.Ref == "" {
			return fmt.Errorf("%s: git needs ref = a tag, branch or commit to take", q)
		}
		if d.SHA256 != "" {
			return fmt.Errorf("%s: sha256 checks a url archive; a git dependency is pinned by imgbuild.lock", q)
		}
	case "url":
		if !strings.HasPrefix(d.URL, "https://") && !strings.HasPrefix(d.URL, "http://") {
			return fmt.Errorf("%s: url %q: give an https:// (or http://) address of a .tar.gz archive", q, d.URL)
		}
		if d.Ref != "" {
			return fmt.Errorf("%s: ref names a git tag, branch or commit; a url archive is pinned by sha256", q)
		}
		if !sha256Hex.MatchString(d.SHA256) {
			return fmt.Errorf("%s: url needs sha256 = the archive's sha256 in hex (64 characters; sha256sum prints it), got %q", q, d.SHA256)
		}
	default:
		if d.Ref != "" || d.SHA256 != "" {
			return fmt.Errorf("%s: a path dependency takes no ref or sha256", q)
		}
		return nil
	}
	if d.Path != "" {
		clean := path.Clean(d.Path)
		if path.IsAbs(d.Path) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(d.Path, "\\") {
			return fmt.Errorf("%s: path %q must be a directory inside the %s, written with /", q, d.Path, map[string]string{"git": "repository", "url": "archive"}[d.Kind()])
		}
	}
	return nil
}
