package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
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
	spec := types.VirtualMachineCloneSpec{
		Location: place.relocation(),
		Config: &types.VirtualMachineConfigSpec{
			ExtraConfig: append([]types.BaseOptionValue{b.marker()}, b.guestinfo()...),
		},
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
	if err := vm.cloneFrom(ctx, place.source, place.source.InventoryPath, spec, "clone"); err != nil {
		return err
	}
	b.say("cloned %s to %s", place.source.InventoryPath, vm.path)
	return nil
}

// relocation is where the placement puts a new VM: its pool, and its host
// and datastore when the build names them.
func (s *stepPlacement) relocation() types.VirtualMachineRelocateSpec {
	pool := s.pool.Reference()
	loc := types.VirtualMachineRelocateSpec{Pool: &pool}
	if s.host != nil {
		h := s.host.Reference()
		loc.Host = &h
	}
	if s.ds != nil {
		d := s.ds.Reference()
		loc.Datastore = &d
	}
	return loc
}

// cloneFrom clones src (shown as srcPath) into h with spec, in h's folder
// under h's name: the task is h.pending while it runs, and h adopts the
// clone once it is done. A build cancelled meanwhile leaves the task to
// h's cleanup, which waits for it and removes what it made.
func (h *vmHandle) cloneFrom(ctx context.Context, src *object.VirtualMachine, srcPath string, spec types.VirtualMachineCloneSpec, label string) error {
	b := h.env
	cctx, cancel := detached(ctx)
	t, err := src.Clone(cctx, h.place.folder, h.createName(), spec)
	cancel()
	if err != nil {
		return fmt.Errorf("cloning %s: %s", srcPath, explain(err))
	}
	h.pending = t
	info, err := b.waitTask(ctx, t, label)
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		h.pending = nil
		return fmt.Errorf("cloning %s to %s: %s", srcPath, h.plannedPath(), explain(err))
	}
	h.adopt(info.Result.(types.ManagedObjectReference))
	return nil
}
