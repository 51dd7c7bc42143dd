package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// stepClone clones the template into the VM the build works on. The VM is
// the build's artifact: its cleanup waits for the end of post-processing,
// then removes the VM if anything failed (or destroy = True).
type stepClone struct {
	vm *vmHandle // output: the clone
}

// Name implements step.Step.
func (s *stepClone) Name() string { return "clone template" }

// MakesArtifact implements step.Artifact.
func (s *stepClone) MakesArtifact() bool { return true }

// Cleanup removes the clone if the build failed, or with destroy = True.
func (s *stepClone) Cleanup(ctx context.Context, failed bool) error { return s.vm.remove(ctx, failed) }

// Leftovers implements step.Leaver.
func (s *stepClone) Leftovers() []string { return s.vm.left() }

// Run implements step.Step.
func (s *stepClone) Run(ctx context.Context) error {
	b, vm, place := s.vm.env, s.vm, s.vm.place
	pool := place.pool.Reference()
	spec := types.VirtualMachineCloneSpec{
		Location: types.VirtualMachineRelocateSpec{Pool: &pool},
		Config: &types.VirtualMachineConfigSpec{
			ExtraConfig: append([]types.BaseOptionValue{b.marker()}, b.guestinfo()...),
		},
	}
	if place.host != nil {
		h := place.host.Reference()
		spec.Location.Host = &h
	}
	if place.ds != nil {
		d := place.ds.Reference()
		spec.Location.Datastore = &d
	}
	if b.clone.LinkedClone {
		var o mo.VirtualMachine
		if err := place.source.Properties(ctx, place.source.Reference(), []string{"snapshot"}, &o); err != nil {
			return fmt.Errorf("reading the current snapshot of %s: %s", place.source.InventoryPath, explain(err))
		}
		if o.Snapshot == nil || o.Snapshot.CurrentSnapshot == nil {
			return fmt.Errorf("%s has no snapshot for a linked clone", place.source.InventoryPath)
		}
		spec.Snapshot = o.Snapshot.CurrentSnapshot
		spec.Location.DiskMoveType = string(types.VirtualMachineRelocateDiskMoveOptionsCreateNewChildDiskBacking)
	}
	kind := "full"
	if b.clone.LinkedClone {
		kind = "linked"
	}
	b.say("cloning %s to %s (%s clone)", place.source.InventoryPath, place.plannedPath(), kind)
	cctx, cancel := detached(ctx)
	t, err := place.source.Clone(cctx, place.folder, place.createName, spec)
	cancel()
	if err != nil {
		return fmt.Errorf("cloning %s: %s", place.source.InventoryPath, explain(err))
	}
	vm.pending = t
	info, err := b.waitTask(ctx, t, "clone")
	if err != nil {
		if ctx.Err() != nil {
			// The clone goes on: the cleanup waits for it and removes
			// what it made.
			return context.Cause(ctx)
		}
		vm.pending = nil
		return fmt.Errorf("cloning %s to %s: %s", place.source.InventoryPath, place.plannedPath(), explain(err))
	}
	vm.adopt(info.Result.(types.ManagedObjectReference))
	b.say("cloned %s to %s", place.source.InventoryPath, vm.path)
	return nil
}
