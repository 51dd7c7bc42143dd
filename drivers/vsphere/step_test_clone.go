package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/step"
)

// testStep launches the machine a build's tests = [...] run on, once the
// VM is shut down and captured (its build settings removed, its snapshot
// taken) and before anything is published (export, content library,
// template, the rename of force): a clone of the VM, powered on with a
// key of its own in guestinfo, reached over SSH as the build's VM was
// (ssh_host, or the address VMware Tools report), and removed as soon as
// the tests are over. A failed test fails the build, so the VM itself is
// removed too and nothing is published.
func (b *buildEnv) testStep(place *stepPlacement, vm *vmHandle) (*engine.TestStep, error) {
	key, err := ssh.NewKey("imgbuild " + b.job.Name + " (tests)")
	if err != nil {
		return nil, fmt.Errorf("making the test machine's SSH key: %w", err)
	}
	clone := &vmHandle{env: b, vc: vm.vc, place: place, name: b.name + "-test-" + b.id[:8], test: true}
	machine := []step.Step{&stepTestClone{env: b, source: vm, clone: clone, key: key}, &stepPowerOn{env: b, vm: clone}}
	ip := &stepWaitIP{env: b, vm: clone}
	if b.fin.SSH.Host == "" {
		machine = append(machine, ip)
	}
	connect := &stepSSH{env: b, ip: ip, key: key}
	machine = append(machine, connect)
	return &engine.TestStep{Job: b.job, Machine: machine, Over: connect}, nil
}

// stepTestClone clones the build's VM for its tests: a linked clone of its
// current snapshot when it has one (create_snapshot = True), else a full
// clone, in the same folder, pool, host and datastore, carrying the
// build's marker and the test machine's key. Its cleanup removes the
// clone, whatever happened.
type stepTestClone struct {
	env    *buildEnv
	source *vmHandle // the build's VM, shut down
	clone  *vmHandle // output
	key    *ssh.Key  // installed through guestinfo
}

// Name implements step.Step.
func (s *stepTestClone) Name() string { return "clone for tests" }

// Cleanup removes the clone.
func (s *stepTestClone) Cleanup(ctx context.Context, failed bool) error {
	return s.clone.remove(ctx, failed)
}

// Leftovers implements step.Leaver.
func (s *stepTestClone) Leftovers() []string { return s.clone.left() }

// Run implements step.Step.
func (s *stepTestClone) Run(ctx context.Context) error {
	b, src, place := s.env, s.source, s.clone.place
	spec := types.VirtualMachineCloneSpec{
		Location: place.relocation(),
		Config: &types.VirtualMachineConfigSpec{
			ExtraConfig: append([]types.BaseOptionValue{b.marker()},
				b.guestinfoFor(s.key, cloudInitInstancePrefix+b.id+"-test", hostLabel(s.clone.createName()))...),
		},
	}
	var o mo.VirtualMachine
	if err := src.vm.Properties(ctx, src.vm.Reference(), []string{"snapshot"}, &o); err != nil {
		return ctxErr(ctx, fmt.Errorf("reading the snapshots of %s: %s", src.path, explain(err)))
	}
	kind := "full clone: the VM has no snapshot to base a linked clone on; create_snapshot = True makes one"
	if o.Snapshot != nil && o.Snapshot.CurrentSnapshot != nil {
		spec.Snapshot = o.Snapshot.CurrentSnapshot
		spec.Location.DiskMoveType = string(types.VirtualMachineRelocateDiskMoveOptionsCreateNewChildDiskBacking)
		kind = "linked clone of its current snapshot"
	}
	b.say("cloning %s to %s for the tests (%s)", src.path, s.clone.plannedPath(), kind)
	return s.clone.cloneFrom(ctx, src.vm, src.path, spec, "clone for tests")
}
