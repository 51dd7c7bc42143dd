package modules

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Why returns every chain of modules from the workspace to the module
// name (by its canonical name, or by a name some module declares it by),
// each as the names it is declared by along the way: [["security",
// "plat"], ["platform"]]. It returns an error naming the modules when
// none is called that.
func (g *Graph) Why(name string) ([][]Step, error) {
	target := name
	if _, ok := g.Modules[target]; !ok {
		target = ""
		for _, scope := range g.scopes() {
			if c, ok := g.Deps[scope][name]; ok {
				target = c
				break
			}
		}
		if target == "" {
			return nil, fmt.Errorf("no module is named %q (modules: %s)", name, shortList(g.names()))
		}
	}
	var out [][]Step
	var walk func(scope string, path []Step, seen map[string]bool)
	walk = func(scope string, path []Step, seen map[string]bool) {
		for _, d := range g.declared[scope] {
			c, ok := g.Deps[scope][d.Name]
			if !ok || seen[c] {
				continue
			}
			p := append(slices.Clone(path), Step{Module: c, As: d.Name, Pos: d.Pos})
			if c == target {
				out = append(out, p)
				continue
			}
			seen[c] = true
			walk(c, p, seen)
			delete(seen, c)
		}
	}
	walk("", nil, map[string]bool{})
	return out, nil
}

// Step is one edge of a chain: the module, the name it is declared by, and
// where.
type Step struct {
	Module, As, Pos string
}

func (s Step) String() string { return asName(s.Module, s.As) }

// WhyText is imgbuild mod why NAME: every chain that leads to the module.
func (g *Graph) WhyText(name string) (string, error) {
	chains, err := g.Why(name)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, ch := range chains {
		parts := []string{g.rootName()}
		for _, s := range ch {
			parts = append(parts, s.String())
		}
		last := ch[len(ch)-1]
		fmt.Fprintf(&b, "%s  (%s)\n", strings.Join(parts, " → "), last.Pos)
	}
	if m := g.Modules[chains[0][len(chains[0])-1].Module]; m != nil {
		fmt.Fprintf(&b, "%s is %s, content %s\n", m.Name, m.Version(), ShortHash(m.Hash))
	}
	return b.String(), nil
}

// Text is imgbuild mod graph: the modules as a tree from the workspace,
// each with its version; a module met again shows "(above)" instead of
// its dependencies once more.
func (g *Graph) Text() string {
	var b strings.Builder
	b.WriteString(g.rootName() + "\n")
	shown := map[string]bool{}
	var walk func(scope, indent string)
	walk = func(scope, indent string) {
		decl := g.declared[scope]
		for i, d := range decl {
			c := g.Deps[scope][d.Name]
			m := g.Modules[c]
			branch, next := "├── ", "│   "
			if i == len(decl)-1 {
				branch, next = "└── ", "    "
			}
			line := asName(c, d.Name)
			if m != nil {
				line += "  " + m.Version()
			}
			if shown[c] {
				fmt.Fprintf(&b, "%s%s%s (above)\n", indent, branch, line)
				continue
			}
			if m != nil {
				line += "  " + ShortHash(m.Hash)
			}
			fmt.Fprintf(&b, "%s%s%s\n", indent, branch, line)
			shown[c] = true
			walk(c, indent+next)
		}
	}
	walk("", "")
	return b.String()
}

// scopes lists "" and the modules, in order.
func (g *Graph) scopes() []string {
	out := []string{""}
	names := g.names()
	sort.Strings(names)
	return append(out, names...)
}
