package provision

import (
	"fmt"
	"path"

	"github.com/imgbuild/imgbuild/engine/schema"
)

// BuildFilter is the only/except pair every provisioner accepts: which
// builds it applies to, by name or glob ("web-*", as path.Match reads it).
type BuildFilter struct {
	Only   []string `kw:"only" doc:"Run only in the builds with these names or globs (\"web-*\")."`
	Except []string `kw:"except" doc:"Run in every build but those with these names or globs."`
}

// Applies reports whether the provisioner runs in the named build.
func (f *BuildFilter) Applies(build string) bool {
	if len(f.Only) > 0 && !matchAny(f.Only, build) {
		return false
	}
	return !matchAny(f.Except, build)
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Validate checks the patterns, and that only and except are not both
// set. A provisioner's config calls it from its own Validate.
func (f *BuildFilter) Validate() error {
	if len(f.Only) > 0 && len(f.Except) > 0 {
		return fmt.Errorf("only and except cannot both be set: use one of them")
	}
	for _, kw := range []struct {
		name string
		list []string
	}{{"only", f.Only}, {"except", f.Except}} {
		for _, p := range kw.list {
			if _, err := path.Match(p, ""); err != nil {
				return schema.Errorf(kw.name, "%q is not a valid build name or glob: %v", p, err)
			}
		}
	}
	return nil
}

// applier is a config with a BuildFilter.
type applier interface{ Applies(build string) bool }

// Filter is an engine.ProvisionerDef's Filter for configs that embed a
// BuildFilter: whether the provisioner applies to the named build.
func Filter(config any, build string) bool {
	if a, ok := config.(applier); ok {
		return a.Applies(build)
	}
	return true
}
