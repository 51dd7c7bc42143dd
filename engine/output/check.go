package output

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/imgbuild/imgbuild/engine/workspace"
)

// StateDir is the directory under the workspace where imgbuild keeps its
// own files (state, logs, the record of outputs); no output may be in it.
const StateDir = ".imgbuild"

// CheckPath checks that rel may name an output in the workspace root: a
// path relative to the workspace that stays inside it (through ".." or a
// symbolic link alike), is not the workspace itself and is not under
// .imgbuild/. It returns the path it leads to, relative to root and
// slash-separated. The error starts with the path as given, for the
// caller to put after the keyword: `for parameter output: "/x" is ...`.
func CheckPath(root, rel string) (string, error) {
	suggest := "output/" + path.Base(filepath.ToSlash(rel))
	switch {
	case rel == "":
		return "", errors.New(`is empty: name a path inside the workspace, such as "output/web"`)
	case filepath.IsAbs(rel):
		return "", fmt.Errorf("%q is absolute: outputs go inside the workspace; write a path relative to it, such as %q", rel, suggest)
	}
	resolved, err := workspace.Resolve(root, rel)
	var esc *workspace.EscapeError
	if errors.As(err, &esc) {
		return "", fmt.Errorf("%v: outputs go inside the workspace, such as %q", err, suggest)
	}
	if err != nil {
		return "", fmt.Errorf("%q: %v", rel, err)
	}
	resolved = filepath.ToSlash(resolved)
	through := ""
	if clean := path.Clean(filepath.ToSlash(rel)); clean != resolved {
		through = fmt.Sprintf(" (it leads to %s)", resolved)
	}
	switch {
	case resolved == ".":
		return "", fmt.Errorf("%q is the workspace itself%s: outputs go in a directory inside it, such as \"output/web\"", rel, through)
	case resolved == StateDir || strings.HasPrefix(resolved, StateDir+"/"):
		return "", fmt.Errorf("%q is inside %s/%s, where imgbuild keeps its state and logs: choose another path, such as %q", rel, StateDir, through, suggest)
	}
	return resolved, nil
}

// Expand replaces {build} and {driver} in an output path with the build's
// name and its driver's.
func Expand(p, build, driver string) string {
	return strings.NewReplacer("{build}", build, "{driver}", driver).Replace(p)
}
