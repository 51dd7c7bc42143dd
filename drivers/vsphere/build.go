package vsphere

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/step"
)

// markerKey is the advanced setting (ExtraConfig) every VM a build creates
// carries, set to the build's random id. Cleanups remove a VM only when it
// carries their build's id: a build never touches a VM it did not create.
const markerKey = "imgbuild.build"

// buildEnv is what every step of one vsphere_clone or vsphere_iso build
// reads and none writes: the config, the job, the build's id and SSH key.
// What a step learns or makes is its own (its fields), read by the later
// steps that point at it; the VM is a vmHandle they share.
type buildEnv struct {
	job   *engine.Job
	clone *CloneConfig // one of clone and iso is set
	iso   *ISOConfig
	conn  Connection
	loc   Location
	hw    Hardware
	fin   Finish

	id        string   // random; the marker's value and temporary names
	name      string   // vm_name: the name the result ends up with
	key       *ssh.Key // the build's SSH key, installed through guestinfo
	workspace string   // absolute
}

// newBuild prepares the environment common to both builders.
func newBuild(job *engine.Job) (*buildEnv, error) {
	b := &buildEnv{job: job}
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
	// run --force: replace this build's previous artifact, a VM or
	// template of the same name.
	b.loc.Force = b.loc.Force || job.Force
	b.name = b.loc.VMName
	if b.name == "" {
		b.name = job.Name
	}
	if err := checkVMName(b.name); err != nil {
		return nil, fmt.Errorf("vm_name: %v", err)
	}
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
	return b.run(ctx, func(vc *stepConnect, place *stepPlacement, vm *vmHandle) []step.Step {
		steps := []step.Step{&stepClone{vm: vm}}
		if b.needsHardware() {
			steps = append(steps, &stepHardware{env: b, vm: vm, place: place})
		}
		if b.clone.Customize != nil {
			steps = append(steps, &stepCustomize{env: b, vm: vm})
		}
		return append(steps, &stepPowerOn{env: b, vm: vm})
	})
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
	return b.run(ctx, func(vc *stepConnect, place *stepPlacement, vm *vmHandle) []step.Step {
		http := &stepHTTP{env: b, vc: vc}
		upload := &stepUploadISO{env: b, place: place}
		var steps []step.Step
		if b.iso.HTTPDirectory != "" || len(b.iso.HTTPContent) > 0 {
			steps = append(steps, http)
		}
		if b.iso.ISOURL != "" {
			steps = append(steps, upload)
		}
		steps = append(steps, &stepCreateVM{vm: vm, upload: upload}, &stepPowerOn{env: b, vm: vm})
		if len(b.iso.BootCommand) > 0 {
			steps = append(steps, &stepBootCommand{env: b, vm: vm, http: http})
		}
		return steps
	})
}

// run runs a build: it connects and finds the VM's place, runs the steps
// that make the VM and power it on (what makeVM returns), then the steps
// both builders end with, and returns the artifact.
func (b *buildEnv) run(ctx context.Context, makeVM func(vc *stepConnect, place *stepPlacement, vm *vmHandle) []step.Step) (*engine.Artifact, error) {
	vc := &stepConnect{env: b}
	place := &stepPlacement{env: b, vc: vc}
	vm := &vmHandle{env: b, vc: vc, place: place}
	steps := append([]step.Step{vc, place}, makeVM(vc, place, vm)...)
	fin, err := b.finishSteps(vc, place, vm)
	if err != nil {
		return nil, err
	}
	if err := b.job.Steps.Run(ctx, append(steps, fin.steps...)...); err != nil {
		return nil, err
	}
	return fin.artifact(), nil
}

// finish is the steps both builders end with, and what the artifact is
// made of.
type finish struct {
	env     *buildEnv
	place   *stepPlacement
	vm      *vmHandle
	export  *stepExport
	library *stepContentLibrary
	steps   []step.Step
}

// finishSteps makes the steps both builders end with.
func (b *buildEnv) finishSteps(vc *stepConnect, place *stepPlacement, vm *vmHandle) (*finish, error) {
	f := &finish{
		env: b, place: place, vm: vm,
		export:  &stepExport{env: b, vm: vm, place: place},
		library: &stepContentLibrary{env: b, vc: vc, vm: vm, place: place},
	}
	ip := &stepWaitIP{env: b, vm: vm}
	if b.fin.SSH.Host == "" {
		f.steps = append(f.steps, ip)
	}
	connect := &stepSSH{env: b, ip: ip}
	f.steps = append(f.steps, connect, &engine.ProvisionStep{Job: b.job, Over: connect},
		&stepShutdown{env: b, vm: vm, ssh: connect}, &stepRemoveSettings{env: b, vm: vm})
	if b.fin.CreateSnapshot {
		f.steps = append(f.steps, &stepSnapshot{env: b, vm: vm})
	}
	// The tests run on a clone of the captured VM (a linked clone of the
	// snapshot just taken, if any); everything after them publishes, and
	// a failed test removes the VM before any of it.
	if b.job.HasTests() {
		test, err := b.testStep(place, vm)
		if err != nil {
			return nil, err
		}
		f.steps = append(f.steps, test)
	}
	// Export and import from the VM, before it becomes a template: vCenter
	// makes a library VM template (VMTX) only from a VM.
	if b.fin.Export != nil {
		f.steps = append(f.steps, f.export)
	}
	if b.fin.ContentLibrary != nil {
		f.steps = append(f.steps, f.library)
	}
	if b.fin.ConvertToTemplate {
		f.steps = append(f.steps, &stepTemplate{env: b, vm: vm})
	}
	if b.loc.Force {
		f.steps = append(f.steps, &stepReplace{env: b, vm: vm, place: place})
	}
	return f, nil
}

// artifact describes what the build made.
func (f *finish) artifact() *engine.Artifact {
	b, vm := f.env, f.vm
	files := f.export.files
	a := &engine.Artifact{
		ID:       vm.path,
		Platform: "vsphere",
		Region:   f.place.inv.dcName,
		Files:    append([]string(nil), files...),
		Fields: map[string]any{
			"vm_name":        b.name,
			"inventory_path": vm.path,
			"moref":          "",
			"template":       "",
			"export_files":   append([]string{}, files...),
			"library_item":   f.library.item,
			"datacenter":     f.place.inv.dcName,
			// Verify checks that the VM still carries it.
			"marker": b.id,
		},
	}
	if vm.vm != nil {
		a.Fields["moref"] = vm.vm.Reference().Value
	}
	if vm.templated {
		a.Fields["template"] = vm.path
	}
	if b.fin.Destroy {
		// The VM is removed once post-processing is over; the build's
		// result is what it was exported or imported to.
		a.Fields["inventory_path"], a.Fields["moref"] = "", ""
		switch {
		case f.library.item != "":
			a.ID = "library " + b.fin.ContentLibrary.Library + ": " + b.libraryItemName()
		case len(files) > 0:
			a.ID = f.place.export.shownDir
		}
	}
	return a
}

// libraryItemName is the content library item's name.
func (b *buildEnv) libraryItemName() string {
	if l := b.fin.ContentLibrary; l != nil && l.Name != "" {
		return l.Name
	}
	return b.name
}

// marker is the ExtraConfig entry that marks a VM as this build's.
func (b *buildEnv) marker() types.BaseOptionValue {
	return &types.OptionValue{Key: markerKey, Value: b.id}
}

// say reports a message.
func (b *buildEnv) say(format string, args ...any) { b.job.UI.Say(format, args...) }

// shown returns p relative to the workspace when inside it.
func (b *buildEnv) shown(p string) string {
	rel, err := filepath.Rel(b.workspace, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return p
	}
	return rel
}
