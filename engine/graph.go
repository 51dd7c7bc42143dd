package engine

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
)

// Node is one build recorded from a description.
type Node struct {
	Name   string
	Driver string // the builder's name: "local", "amazon_ebs"
	Pos    string // where the builder was called, "file:line:col"
	// Settings are the builder's own keywords.
	Settings *value.Map
	// Provisioners and PostProcessors are provisioner and post-processor
	// objects (Kind "shell", "manifest"...), in order.
	Provisioners   []*value.Object
	PostProcessors []*value.Object
	// ErrorCleanup are provisioners run on the machine when a provisioner
	// fails, before the build is cleaned up (Packer's
	// error-cleanup-provisioner): error_cleanup = [...].
	ErrorCleanup []*value.Object
	// Tests are checks run against a fresh machine launched from the
	// captured image, before it is published (tests = [...]): provisioner
	// objects, each with its name (Object.Name).
	Tests []*value.Object
	// DependsOn lists builds named by depends_on, with where each was
	// written.
	DependsOn []Dependency
}

// Dependency is an explicit edge.
type Dependency struct {
	Build string
	Pos   string
}

// Edge says that To consumes an output of From (or depends on it
// explicitly), and where: Via is "source_ami ← base.image_id" or
// "depends_on".
type Edge struct {
	From, To string
	Via      string
}

// Graph is the set of builds a description asked for. Nodes must not be
// changed once added: their edges are computed once.
type Graph struct {
	Nodes  []*Node
	byName map[string]*Node
	edges  map[*Node][]Edge
	deps   map[*Node][]string
}

// NewGraph returns an empty graph.
func NewGraph() *Graph {
	return &Graph{byName: map[string]*Node{}, edges: map[*Node][]Edge{}, deps: map[*Node][]string{}}
}

// Add records n; a name used twice is an error naming both places.
func (g *Graph) Add(n *Node) error {
	if prev, ok := g.byName[n.Name]; ok {
		return fmt.Errorf("two builds are named %q: %s and %s; build names must be unique", n.Name, prev.Pos, n.Pos)
	}
	g.Nodes = append(g.Nodes, n)
	g.byName[n.Name] = n
	return nil
}

// Node returns the build with the given name.
func (g *Graph) Node(name string) (*Node, bool) {
	n, ok := g.byName[name]
	return n, ok
}

// Names returns the builds' names in the order they were recorded.
func (g *Graph) Names() []string {
	out := make([]string, len(g.Nodes))
	for i, n := range g.Nodes {
		out[i] = n.Name
	}
	return out
}

// Edges returns every edge into n, in the order they appear in its
// settings, provisioners, post-processors and depends_on; one per
// (from, via).
func (g *Graph) Edges(n *Node) []Edge {
	if e, ok := g.edges[n]; ok {
		return e
	}
	var out []Edge
	seen := map[string]bool{}
	add := func(e Edge) {
		k := e.From + "\x00" + e.Via
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	visit := func(f value.FoundRef) {
		add(Edge{From: f.Ref.Build, To: n.Name, Via: f.Path + " ← " + f.Ref.String()})
	}
	value.Walk("", n.Settings, visit)
	for i, p := range n.Provisioners {
		value.Walk(fmt.Sprintf("provisioners[%d]", i), &p.Fields, visit)
	}
	for i, p := range n.PostProcessors {
		value.Walk(fmt.Sprintf("post[%d]", i), &p.Fields, visit)
	}
	for i, p := range n.ErrorCleanup {
		value.Walk(fmt.Sprintf("error_cleanup[%d]", i), &p.Fields, visit)
	}
	for i, p := range n.Tests {
		value.Walk(fmt.Sprintf("tests[%d]", i), &p.Fields, visit)
	}
	for _, d := range n.DependsOn {
		add(Edge{From: d.Build, To: n.Name, Via: "depends_on"})
	}
	g.edges[n] = out
	return out
}

// Deps returns the names of the builds n depends on, without repeats.
func (g *Graph) Deps(n *Node) []string {
	if d, ok := g.deps[n]; ok {
		return d
	}
	var out []string
	seen := map[string]bool{}
	for _, e := range g.Edges(n) {
		if !seen[e.From] {
			seen[e.From] = true
			out = append(out, e.From)
		}
	}
	g.deps[n] = out
	return out
}

// Check verifies that every edge names a build that exists and an output
// its driver has, and that there is no cycle. Errors name file:line:col.
func (g *Graph) Check(reg *Registry) error {
	var errs []string
	for _, n := range g.Nodes {
		for _, e := range g.Edges(n) {
			from, ok := g.byName[e.From]
			if !ok {
				msg := fmt.Sprintf("%s: build %q depends on %q, which is not defined", n.Pos, n.Name, e.From)
				if near := schema.Nearest(e.From, g.Names()); near != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", near)
				}
				errs = append(errs, msg)
				continue
			}
			if e.Via == "depends_on" || reg == nil {
				continue
			}
			if _, ok := reg.Builders[from.Driver]; !ok {
				continue
			}
			output := e.Via[strings.LastIndex(e.Via, ".")+1:]
			if err := reg.OutputsOf(from).Check(output); err != nil {
				errs = append(errs, fmt.Sprintf("%s: build %q refers to %s.%s, but %v", n.Pos, n.Name, e.From, output, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	if cyc := g.cycle(); cyc != nil {
		var b strings.Builder
		names := make([]string, len(cyc))
		for i, n := range cyc {
			names[i] = n.Name
		}
		fmt.Fprintf(&b, "dependency cycle (each build needs the next): %s → %s", strings.Join(names, " → "), names[0])
		for _, n := range cyc {
			fmt.Fprintf(&b, "\n  %s: build %q", n.Pos, n.Name)
		}
		return fmt.Errorf("%s", b.String())
	}
	return nil
}

// cycle returns the members of one dependency cycle, in order, or nil.
func (g *Graph) cycle() []*Node {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []*Node
	var found []*Node
	var visit func(n *Node) bool
	visit = func(n *Node) bool {
		color[n.Name] = grey
		stack = append(stack, n)
		for _, d := range g.Deps(n) {
			dn, ok := g.byName[d]
			if !ok {
				continue
			}
			switch color[d] {
			case grey:
				for i, s := range stack {
					if s.Name == d {
						// In stack order each member needs the next.
						found = append([]*Node(nil), stack[i:]...)
						return true
					}
				}
			case white:
				if visit(dn) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n.Name] = black
		return false
	}
	for _, n := range g.Nodes {
		if color[n.Name] == white && visit(n) {
			return found
		}
	}
	return nil
}

// Select returns the graph restricted to the builds matching only (names or
// globs; empty means all) and not matching except, plus every build a
// selected build depends on. A pattern that matches nothing is an error.
func (g *Graph) Select(only, except []string) (*Graph, error) {
	match := matchAny
	if err := g.CheckPatterns(append(append([]string(nil), only...), except...)); err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	var want func(name string)
	want = func(name string) {
		if keep[name] {
			return
		}
		keep[name] = true
		if n, ok := g.byName[name]; ok {
			for _, d := range g.Deps(n) {
				want(d)
			}
		}
	}
	for _, n := range g.Nodes {
		if (len(only) == 0 || match(only, n.Name)) && !match(except, n.Name) {
			want(n.Name)
		}
	}
	// An excepted build that a selected one needs cannot be left out:
	// say who needs it rather than build it anyway.
	for _, n := range g.Nodes {
		if !keep[n.Name] || !match(except, n.Name) {
			continue
		}
		var needers []string
		for _, m := range g.Nodes {
			if keep[m.Name] && !match(except, m.Name) && slices.Contains(g.Deps(m), n.Name) {
				needers = append(needers, strconv.Quote(m.Name))
			}
		}
		if len(needers) == 0 {
			continue // needed only by other excepted builds: one of those is reported
		}
		return nil, fmt.Errorf("--except %q: %s %s it; leave it in, or skip %s too", n.Name, strings.Join(needers, " and "), pluralVerb(len(needers), "needs", "need"), pluralVerb(len(needers), "that build", "those builds"))
	}
	if len(keep) == 0 && len(g.Nodes) > 0 {
		return nil, fmt.Errorf("nothing to build: the selection leaves out every build (builds: %s)", strings.Join(g.Names(), ", "))
	}
	out := NewGraph()
	for _, n := range g.Nodes {
		if keep[n.Name] {
			_ = out.Add(n)
		}
	}
	return out, nil
}

// CheckPatterns reports a build pattern (a name or a glob) that is
// malformed or matches no build, listing the builds there are.
func (g *Graph) CheckPatterns(patterns []string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("bad build pattern %q: %v", p, err)
		}
		hit := false
		for _, n := range g.Nodes {
			if matchAny([]string{p}, n.Name) {
				hit = true
				break
			}
		}
		if !hit {
			msg := fmt.Sprintf("no build matches %q", p)
			if len(g.Nodes) > 0 {
				msg += fmt.Sprintf(" (builds: %s)", strings.Join(g.Names(), ", "))
			}
			return fmt.Errorf("%s", msg)
		}
	}
	return nil
}

// matchAny reports whether name matches one of the patterns (names or
// globs).
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

func pluralVerb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Waves groups builds into the order they can run: every build in a wave
// depends only on builds of earlier waves. Within a wave, builds keep the
// order they were recorded in. The graph must be acyclic (Check).
func (g *Graph) Waves() [][]*Node {
	level := map[string]int{}
	var depth func(n *Node) int
	depth = func(n *Node) int {
		if l, ok := level[n.Name]; ok {
			return l
		}
		level[n.Name] = 0 // guards against cycles if Check was skipped
		l := 0
		for _, d := range g.Deps(n) {
			if dn, ok := g.byName[d]; ok {
				l = max(l, depth(dn)+1)
			}
		}
		level[n.Name] = l
		return l
	}
	maxL := -1
	for _, n := range g.Nodes {
		maxL = max(maxL, depth(n))
	}
	waves := make([][]*Node, maxL+1)
	for _, n := range g.Nodes {
		waves[level[n.Name]] = append(waves[level[n.Name]], n)
	}
	return waves
}

// Secrets returns every sensitive string in the graph's settings, sorted.
func (g *Graph) Secrets() []string {
	set := map[string]bool{}
	add := func(s string) { set[s] = true }
	for _, n := range g.Nodes {
		value.Secrets(n.Settings, add)
		for _, p := range n.Provisioners {
			value.Secrets(p, add)
		}
		for _, p := range n.PostProcessors {
			value.Secrets(p, add)
		}
		for _, p := range n.ErrorCleanup {
			value.Secrets(p, add)
		}
		for _, p := range n.Tests {
			value.Secrets(p, add)
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
