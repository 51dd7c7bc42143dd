package vsphere

import (
	"context"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// Builder names in descriptions.
const (
	CloneName = "vsphere_clone"
	ISOName   = "vsphere_iso"
)

// outputs are the outputs both builders have, beyond engine.CommonOutputs.
var outputs = []engine.Output{
	{Name: "vm_name", Doc: "The VM's (or template's) name."},
	{Name: "inventory_path", Doc: "Its inventory path (\"/dc1/vm/templates/web-1.2\"); empty when destroy = True."},
	{Name: "moref", Doc: "Its managed object reference (\"vm-1234\"); empty when destroy = True."},
	{Name: "template", Doc: "Its inventory path when it was converted to a template, else empty: what another vsphere_clone's template can name."},
	{Name: "export_files", Doc: "The files export wrote, as a list of paths."},
	{Name: "library_item", Doc: "The id of the content library item it was imported as, else empty."},
	{Name: "datacenter", Doc: "The datacenter it was built in."},
}

// CloneDef declares the vsphere_clone builder.
func CloneDef() *engine.BuilderDef {
	return builderDef(CloneName,
		"Clones a vSphere VM or template, customizes and boots the clone, provisions it over SSH, shuts it down and keeps it as a VM or template, exports it (OVF/OVA) or imports it into a content library. A failed build removes the clone.",
		&CloneConfig{}, BuildClone)
}

// ISODef declares the vsphere_iso builder.
func ISODef() *engine.BuilderDef {
	return builderDef(ISOName,
		"Creates a vSphere VM from an installer ISO: attaches the ISO, boots, types boot_command (answers served over HTTP), waits for the installed system, provisions it over SSH, shuts it down and keeps it as a VM or template, exports it or imports it into a content library. A failed build removes the VM.",
		&ISOConfig{}, BuildISO)
}

// builderDef declares a vSphere builder named name (doc, its config cfg,
// build): both have the same outputs, verification and tests.
func builderDef(name, doc string, cfg any, build func(context.Context, *engine.Job) (*engine.Artifact, error)) *engine.BuilderDef {
	return &engine.BuilderDef{
		Schema:  schema.Of(name, doc, cfg),
		Outputs: outputs,
		Build:   build,
		Verify:  Verify,
		// tests = [...] run on a clone of the new VM (testStep).
		CheckTests: func(any) error { return nil },
	}
}

// Register adds vsphere_clone and vsphere_iso to r.
func Register(r *engine.Registry) {
	r.AddBuilder(CloneDef())
	r.AddBuilder(ISODef())
	r.AddReaper(JournalKind, reaper{})
}
