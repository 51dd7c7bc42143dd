package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/imgbuild/imgbuild/engine/value"
)

// BuildOutputs are the outputs one build has, for references
// (base.image_id, img.ova): its builder's, and those its post-processors
// add (see PostProcessorDef.Outputs).
type BuildOutputs struct {
	build, driver string
	list          []Output
	// from says which calls give each name: "the builder", or
	// "vagrant_box at images.star:12:5".
	from map[string][]string
}

// OutputsOf returns the outputs of the build n: what its builder declares,
// then what each of its post-processors adds.
func (r *Registry) OutputsOf(n *Node) *BuildOutputs {
	o := &BuildOutputs{build: n.Name, driver: n.Driver, from: map[string][]string{}}
	add := func(out Output, from string) {
		if _, ok := o.from[out.Name]; !ok {
			o.list = append(o.list, out)
		}
		o.from[out.Name] = append(o.from[out.Name], from)
	}
	if def, ok := r.Builders[n.Driver]; ok {
		for _, out := range def.AllOutputs() {
			add(out, "the builder")
		}
	}
	for _, p := range n.PostProcessors {
		def, ok := r.PostProcessors[p.Kind]
		if !ok {
			continue
		}
		for _, out := range def.OutputsFor(&p.Fields) {
			add(out, p.Kind+" at "+p.Pos)
		}
	}
	return o
}

// All lists the build's outputs, each once, the builder's first.
func (o *BuildOutputs) All() []Output { return slices.Clone(o.list) }

// Names lists the names of All.
func (o *BuildOutputs) Names() []string {
	names := make([]string, len(o.list))
	for i, out := range o.list {
		names[i] = out.Name
	}
	return names
}

// Has reports whether the build has the named output at all.
func (o *BuildOutputs) Has(name string) bool { return len(o.from[name]) > 0 }

// Check says why a reference to the named output cannot be made: the
// build has no such output, or more than one call gives it (two
// vagrant_box() of one build both make a box: refer to box_libvirt or
// box_virtualbox). nil when exactly one call gives it.
func (o *BuildOutputs) Check(name string) error {
	from := o.from[name]
	switch {
	case len(from) == 0:
		return fmt.Errorf("%s build %q has no output %q (it has %s)", o.driver, o.build, name, strings.Join(o.Names(), ", "))
	case len(from) > 1:
		return fmt.Errorf("build %q has output %q %d times (%s): refer to one made once, such as %s", o.build, name, len(from), strings.Join(from, "; "), o.alternative(name))
	}
	return nil
}

// alternative names outputs that say more than name, for Check's message.
func (o *BuildOutputs) alternative(name string) string {
	var alt []string
	for _, out := range o.list {
		if strings.HasPrefix(out.Name, name+"_") && len(o.from[out.Name]) == 1 {
			alt = append(alt, out.Name)
		}
	}
	if len(alt) == 0 {
		return "an output of the builder"
	}
	return strings.Join(alt, " or ")
}

// OutputsFor returns the outputs one use of the post-processor with these
// settings adds to its build.
func (d *PostProcessorDef) OutputsFor(settings *value.Map) []Output {
	if d.Provides == nil {
		return slices.Clone(d.Outputs)
	}
	names := d.Provides(settings)
	var out []Output
	for _, o := range d.Outputs {
		if slices.Contains(names, o.Name) {
			out = append(out, o)
		}
	}
	return out
}
