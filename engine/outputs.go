package engine

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
	"github.com/imgbuild/imgbuild/engine/workspace"
)

// claim is one path a call names: an output it writes or an input it
// reads.
type claim struct {
	build, call, pos, keyword string
	path                      string // resolved, relative to the workspace, slash-separated
	shared                    bool   // an output-shared file
}

func (c claim) where() string {
	return fmt.Sprintf("%s at %s, %s", c.call, c.pos, c.keyword)
}

// CheckOutputs checks what the description's builds write, before
// anything runs: every output path stays inside the workspace (root) and
// out of .imgbuild/, names no file of the description (files: the
// evaluated .star files and imgbuild.mod, absolute), no input of any
// build (and holds none), and no output of another build (nor holds one,
// nor lies inside one); builds may share an output-shared file (a
// manifest). Each error names the call's file:line:col and, for a clash,
// the other side's; all are reported.
func CheckOutputs(g *Graph, reg *Registry, root string, files []string) error {
	var errs []string
	fail := func(c claim, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s: %s: for parameter %s: %s", c.pos, c.call, c.keyword, fmt.Sprintf(format, args...)))
	}
	var outs, ins []claim
	collect := func(n *Node, call, pos string, s *schema.Schema, settings *value.Map) {
		for _, pv := range s.Paths(settings) {
			for _, p := range pv.Paths {
				c := claim{build: n.Name, call: call, pos: pos, keyword: pv.Keyword, shared: pv.Field.Path == schema.PathSharedOutput}
				if pv.Field.Path.IsOutput() {
					p = output.Expand(strings.TrimPrefix(p, "//"), n.Name, n.Driver)
					resolved, err := output.CheckPath(root, p)
					if err != nil {
						fail(c, "%v", err)
						continue
					}
					c.path = resolved
					outs = append(outs, c)
					continue
				}
				if pv.Field.PathAnywhere {
					continue
				}
				if resolved, ok := inWorkspace(root, p); ok {
					c.path = resolved
					ins = append(ins, c)
				}
			}
		}
	}
	for _, n := range g.Nodes {
		if def, ok := reg.Builders[n.Driver]; ok {
			collect(n, n.Driver, n.Pos, def.Schema, n.Settings)
		}
		for _, o := range n.Provisioners {
			if def, ok := reg.Provisioners[o.Kind]; ok {
				collect(n, o.Kind, o.Pos, def.Schema, &o.Fields)
			}
		}
		for _, o := range n.PostProcessors {
			if def, ok := reg.PostProcessors[o.Kind]; ok {
				collect(n, o.Kind, o.Pos, def.Schema, &o.Fields)
			}
		}
	}
	var desc []string
	for _, f := range files {
		if rel, ok := inWorkspace(root, f); ok {
			desc = append(desc, rel)
		}
	}
	slices.Sort(desc)
	for i, o := range outs {
		for _, d := range desc {
			switch {
			case o.path == d:
				fail(o, "%q is a file of the description: choose another path", o.path)
			case within(o.path, d):
				fail(o, "%q holds %s, a file of the description: choose another path", o.path, d)
			}
		}
		for _, in := range ins {
			switch {
			case o.path == in.path:
				fail(o, "%q is an input of build %q (%s): choose another path", o.path, in.build, in.where())
			case within(o.path, in.path):
				fail(o, "%q holds %s, an input of build %q (%s): choose another path", o.path, in.path, in.build, in.where())
			case within(in.path, o.path):
				fail(o, "%q is inside %s, an input of build %q (%s): choose another path", o.path, in.path, in.build, in.where())
			}
		}
		for _, other := range outs[:i] {
			if other.build == o.build {
				continue
			}
			switch {
			case o.path == other.path && o.shared && other.shared:
				// Builds share a manifest, each keeping its entry.
			case o.path == other.path:
				fail(o, "build %q writes %q too (%s): two builds may not write the same output", other.build, o.path, other.where())
			case within(o.path, other.path):
				fail(o, "%q holds %s, which build %q writes (%s): two builds may not write one inside the other", o.path, other.path, other.build, other.where())
			case within(other.path, o.path):
				fail(o, "%q is inside %s, which build %q writes (%s): two builds may not write one inside the other", o.path, other.path, other.build, other.where())
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

// within reports whether p lies strictly inside dir (both relative,
// slash-separated).
func within(dir, p string) bool {
	return strings.HasPrefix(p, dir+"/")
}

// inWorkspace returns where p (absolute, or relative to root) leads inside
// root, slash-separated, following links; false when it is not inside.
func inWorkspace(root, p string) (string, bool) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(root, p)
	}
	p = strings.TrimSuffix(p, "/")
	if _, ok := workspace.Rel(root, p); !ok {
		return "", false
	}
	resolved, err := workspace.Resolve(root, p)
	if err != nil {
		return "", false
	}
	return path.Clean(filepath.ToSlash(resolved)), true
}
