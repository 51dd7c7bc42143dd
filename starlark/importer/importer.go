// Package importer converts Packer templates into imgbuild descriptions:
// HCL2 templates (a .pkr.hcl file or a directory of them, read with
// hashicorp/hcl/v2) and legacy JSON templates (encoding/json, turned into
// the same HCL first, as Packer's own hcl2_upgrade does). The result is
// Starlark source formatted by bazelbuild/buildtools.
//
// It knows Packer's input and Starlark's syntax, not the engine: the
// builtins it may call and their keywords come in Options, from the
// command line's registry. What has no equivalent becomes a
// "# TODO(import): <original text>" comment and a warning, never a silent
// drop. The mapping table is in mapping.go; Docs prints it. hcl.go and
// convert.go run past 500 lines together because they are one walk over
// Packer's template structure.
package importer

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bazelbuild/buildtools/build"
)

// Options say which builtins the description may use and where it goes.
type Options struct {
	// Builtins maps each builtin this imgbuild offers to its keywords and
	// their types as the docs say them ("string", "list of dict").
	Builtins map[string]map[string]string
	// OutDir is the directory the description will be written to; paths
	// in the template are made relative to it. "" means the template's
	// directory.
	OutDir string
}

// Result is an imported description.
type Result struct {
	// Source is the description, formatted.
	Source []byte
	// Warnings say what became a TODO comment, one each, with the
	// template's file:line:col.
	Warnings []string
	// TODOs counts the TODO(import) comments.
	TODOs int
	// Builds are the names of the builds the description makes.
	Builds []string
	// VarFiles are the *.auto.pkrvars.hcl files next to the template,
	// which Packer loads by itself and imgbuild takes with --var-file.
	VarFiles []string
}

// Import converts the template at path: a .pkr.hcl file, a directory of
// them, or a legacy .json template. A template that does not parse is an
// error with its file:line:col.
func Import(path string, opts Options) (*Result, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("import: %v", err)
	}
	var files []string
	dir := path
	if st.IsDir() {
		matches, _ := filepath.Glob(filepath.Join(path, "*.pkr.hcl"))
		if len(matches) == 0 {
			return nil, fmt.Errorf("import: %s holds no *.pkr.hcl files", path)
		}
		sort.Strings(matches)
		files = matches
	} else {
		files, dir = []string{path}, filepath.Dir(path)
	}
	c := newConverter(opts, dir)
	if strings.HasSuffix(path, ".json") && !strings.HasSuffix(path, ".pkr.json") {
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("import: %v", err)
		}
		hclSrc, err := legacyToHCL(path, src)
		if err != nil {
			return nil, err
		}
		c.legacy = true
		if err := c.parse(path+" (as HCL)", hclSrc); err != nil {
			return nil, err
		}
	} else {
		if strings.HasSuffix(path, ".pkr.json") {
			return nil, fmt.Errorf("import: %s is HCL2 in JSON syntax, which import does not read; write it as .pkr.hcl", path)
		}
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("import: %v", err)
			}
			if err := c.parse(f, src); err != nil {
				return nil, err
			}
		}
	}
	c.convert()
	header := fmt.Sprintf("# Imported from %s by imgbuild import.", filepath.Base(path))
	if len(c.out.Stmt) > 0 {
		first := c.out.Stmt[0].Comment()
		first.Before = append([]build.Comment{{Token: header}, {Token: "#"}}, first.Before...)
	}
	// Formatted as imgbuild fmt formats: parsed back, then buildifier's style.
	out := build.FormatWithoutRewriting(c.out)
	if f, err := build.ParseDefault("images.star", out); err == nil {
		out = build.Format(f)
	}
	res := &Result{Source: out, Warnings: c.warnings, TODOs: c.todos, Builds: c.builds}
	if st.IsDir() {
		res.VarFiles, _ = filepath.Glob(filepath.Join(path, "*.auto.pkrvars.hcl"))
	}
	return res, nil
}

// todoLines comments out original text that starts at column col: the
// first line after "# TODO(import): ", the others indented beneath it.
func todoLines(text string, col int) []build.Comment {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	indent := min(commonIndent(lines[1:]), max(col-1, 0))
	var out []build.Comment
	for i, l := range lines {
		if i == 0 {
			out = append(out, build.Comment{Token: "# TODO(import): " + strings.TrimSpace(l)})
			continue
		}
		if len(l) >= indent {
			l = l[indent:]
		}
		out = append(out, build.Comment{Token: strings.TrimRight("#     "+l, " ")})
	}
	return out
}

func commonIndent(lines []string) int {
	n := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		i := len(l) - len(strings.TrimLeft(l, " \t"))
		if n < 0 || i < n {
			n = i
		}
	}
	return max(n, 0)
}
