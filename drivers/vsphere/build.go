package vsphere

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vapi/library"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/step"
)

// markerKey is the advanced setting (ExtraConfig) every VM a build creates
// carries, set to the build's random id. Cleanups remove a VM only when it
// carries their build's id: a build never touches a VM it did not create.
const markerKey = "imgbuild.build"

// build is one vsphere_clone or vsphere_iso build's state, shared by its
// steps (one per file, step_*.go). Fields are filled in step order.
type build struct {
	job   *engine.Job
	clone *CloneConfig // one of clone and iso is set
	iso   *ISOConfig
	conn  Connection
	loc   Location
	hw    Hardware
	fin   Finish

	id         string   // random; the marker's value and temporary names
	name       string   // vm_name: the name the result ends up with
	createName string   // the name the VM is created under
	key        *ssh.Key // the build's SSH key, installed through guestinfo
	workspace  string   // absolute

	// connect to vCenter
	ep   *endpoint
	sess *vcSession

	// check placement
	inv     *inventory
	folder  *object.Folder
	pool    *object.ResourcePool
	host    *object.HostSystem
	ds      *object.Datastore // nil: the template's (clone)
	source  *object.VirtualMachine
	replace *object.VirtualMachine // the VM named vm_name, replaced at the end (force)
	network object.NetworkReference
	nets    []object.NetworkReference // vsphere_iso's adapters, in order
	library *library.Library
	export  *exportPlan

	// HTTP server and uploaded ISO (vsphere_iso)
	http     *httpServer
	isoFiles []string // datastore paths of the ISOs to attach

	// the VM
	pending   *object.Task // the task creating it, until its result is known
	vm        *object.VirtualMachine
	vmPath    string
	templated bool
	removed   bool // the VM was removed (destroy = True)

	// reaching the guest
	ip   string
	comm *ssh.Communicator

	// the results
	exportFiles []string
	libraryItem string
}

// newBuild prepares the state common to both builders.
func newBuild(job *engine.Job) (*build, error) {
	b := &build{job: job}
	switch c := job.Config.(type) {
	case *CloneConfig:
		b.clone, b.conn, b.loc, b.hw, b.fin = c, c.Connection, c.Location, c.Hardware, c.Finish
	case *ISOConfig:
		b.iso, b.conn, b.loc, b.hw, b.fin = c, c.Connection, c.Location, c.Hardware, c.Finish
	default:
		return nil, fmt.Errorf("vsphere: config is %T, want *vsphere.CloneConfig or *vsphere.ISOConfig", job.Config)
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	b.id = hex.EncodeToString(raw[:])
	b.name = b.loc.VMName
	if b.name == "" {
		b.name = job.Name
	}
	if err := checkVMName(b.name); err != nil {
		return nil, fmt.Errorf("vm_name: %v", err)
	}
	b.createName = b.name
	ws := job.Workspace
	if ws == "" {
		ws = "."
	}
	abs, err := filepath.Abs(ws)
	if err != nil {
		return nil, err
	}
	b.workspace = abs
	b.fin.SSH.ResolvePaths(abs)
	key, err := ssh.NewKey("imgbuild " + job.Name)
	if err != nil {
		return nil, fmt.Errorf("making the build's SSH key: %w", err)
	}
	b.key = key
	return b, nil
}

// BuildClone runs a vsphere_clone build: clone the template, configure and
// customize the clone, boot it, provision it over SSH, shut it down and
// capture it (template, snapshot, export, content library).
func BuildClone(ctx context.Context, job *engine.Job) (*engine.Artifact, error) {
	b, err := newBuild(job)
	if err != nil {
		return nil, err
	}
	if b.clone == nil {
		return nil, fmt.Errorf("vsphere_clone: config is %T, want *vsphere.CloneConfig", job.Config)
	}
	steps := []step.Step{b.connectStep(), b.placementStep(), b.cloneStep()}
	if b.needsHardware() {
		steps = append(steps, b.hardwareStep())
	}
	if b.clone.Customize != nil {
		steps = append(steps, b.customizeStep())
	}
	steps = append(steps, b.powerOnStep())
	steps = append(steps, b.finishSteps()...)
	if err := job.Steps.Run(ctx, steps...); err != nil {
		return nil, err
	}
	return b.artifact(), nil
}

// BuildISO runs a vsphere_iso build: create an empty VM with the ISOs
// attached, boot it, type the boot command, wait for the installed system,
// provision it over SSH, shut it down and capture it.
func BuildISO(ctx context.Context, job *engine.Job) (*engine.Artifact, error) {
	b, err := newBuild(job)
	if err != nil {
		return nil, err
	}
	if b.iso == nil {
		return nil, fmt.Errorf("vsphere_iso: config is %T, want *vsphere.ISOConfig", job.Config)
	}
	steps := []step.Step{b.connectStep(), b.placementStep()}
	if b.iso.HTTPDirectory != "" || len(b.iso.HTTPContent) > 0 {
		steps = append(steps, b.httpStep())
	}
	if b.iso.ISOURL != "" {
		steps = append(steps, b.uploadISOStep())
	}
	steps = append(steps, b.createVMStep(), b.powerOnStep())
	if len(b.iso.BootCommand) > 0 {
		steps = append(steps, b.bootCommandStep())
	}
	steps = append(steps, b.finishSteps()...)
	if err := job.Steps.Run(ctx, steps...); err != nil {
		return nil, err
	}
	return b.artifact(), nil
}

// finishSteps are the steps both builders end with.
func (b *build) finishSteps() []step.Step {
	var steps []step.Step
	if b.fin.SSH.Host == "" {
		steps = append(steps, b.waitIPStep())
	}
	steps = append(steps, b.sshStep(), b.provisionStep(), b.shutdownStep(), b.removeSettingsStep())
	if b.fin.CreateSnapshot {
		steps = append(steps, b.snapshotStep())
	}
	// Export and import from the VM, before it becomes a template: vCenter
	// makes a library VM template (VMTX) only from a VM.
	if b.fin.Export != nil {
		steps = append(steps, b.exportStep())
	}
	if b.fin.ContentLibrary != nil {
		steps = append(steps, b.contentLibraryStep())
	}
	if b.fin.ConvertToTemplate {
		steps = append(steps, b.templateStep())
	}
	if b.loc.Force {
		steps = append(steps, b.replaceStep())
	}
	return steps
}

// artifact describes what the build made.
func (b *build) artifact() *engine.Artifact {
	a := &engine.Artifact{
		ID:       b.vmPath,
		Platform: "vsphere",
		Region:   b.inv.dcName,
		Files:    append([]string(nil), b.exportFiles...),
		Fields: map[string]any{
			"vm_name":        b.name,
			"inventory_path": b.vmPath,
			"moref":          "",
			"template":       "",
			"export_files":   append([]string{}, b.exportFiles...),
			"library_item":   b.libraryItem,
			"datacenter":     b.inv.dcName,
		},
	}
	if b.vm != nil {
		a.Fields["moref"] = b.vm.Reference().Value
	}
	if b.templated {
		a.Fields["template"] = b.vmPath
	}
	if b.fin.Destroy {
		// The VM is removed once post-processing is over; the build's
		// result is what it was exported or imported to.
		a.Fields["inventory_path"], a.Fields["moref"] = "", ""
		switch {
		case b.libraryItem != "":
			a.ID = "library " + b.fin.ContentLibrary.Library + ": " + b.libraryItemName()
		case len(b.exportFiles) > 0:
			a.ID = b.export.shownDir
		}
	}
	return a
}

// vmLeft says what the VM is, for leftovers.
func (b *build) vmLeft() []string {
	switch {
	case b.vm != nil && !b.removed:
		what := "VM "
		if b.templated {
			what = "template "
		}
		return []string{what + b.vmPath + " (" + b.vm.Reference().Value + ")"}
	case b.pending != nil:
		return []string{"VM " + b.plannedPath() + " (being created by task " + b.pending.Reference().Value + ")"}
	}
	return nil
}

// plannedPath is the inventory path the VM is created at.
func (b *build) plannedPath() string {
	if b.folder == nil {
		return b.createName
	}
	return path.Join(b.folder.InventoryPath, b.createName)
}

// libraryItemName is the content library item's name.
func (b *build) libraryItemName() string {
	if l := b.fin.ContentLibrary; l != nil && l.Name != "" {
		return l.Name
	}
	return b.name
}

// marker is the ExtraConfig entry that marks a VM as this build's.
func (b *build) marker() types.BaseOptionValue {
	return &types.OptionValue{Key: markerKey, Value: b.id}
}

// say reports a message; shown is how a path appears to the user.
func (b *build) say(format string, args ...any) { b.job.UI.Say(format, args...) }

// shown returns p relative to the workspace when inside it.
func (b *build) shown(p string) string {
	rel, err := filepath.Rel(b.workspace, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return p
	}
	return rel
}
