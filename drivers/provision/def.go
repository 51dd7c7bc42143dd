package provision

import (
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// Def declares a provisioner named name, documented by doc, whose config
// is a C (a struct embedding BuildFilter, so that only and except apply)
// and that make builds from a decoded config. Every provisioner is
// declared through it: the name is written once, and the build filter is
// the same for all.
func Def[C any](name, doc string, make func(*C) engine.Provisioner) *engine.ProvisionerDef {
	return &engine.ProvisionerDef{
		Schema: schema.Of(name, doc, new(C)),
		New:    engine.Typed(name, make),
		Filter: Filter,
	}
}
