package ansible

import "github.com/imgbuild/imgbuild/engine"

// LocalDef returns ansible_local()'s declaration.
func LocalDef() *engine.ProvisionerDef { return nil }
