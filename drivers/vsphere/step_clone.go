package vsphere

import (
	"context"
	"fmt"
	"path"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/engine/step"
)

// cloneStep clones the template into the VM the build works on. The VM is
// the build's artifact: its cleanup waits for the end of post-processing,
// then removes the VM if anything failed (or destroy = True).
func (b *build) cloneStep() step.Step {
	return &step.Func{
		StepName:  "clone template",
		Artifact:  true,
		RunFunc:   b.cloneVM,
		CleanFunc: b.removeVM,
		LeftFunc:  b.vmLeft,
	}
}

func (b *build) cloneVM(ctx context.Context) error {
	pool := b.pool.Reference()
	spec := types.VirtualMachineCloneSpec{
		Location: types.VirtualMachineRelocateSpec{Pool: &pool},
		Config: &types.VirtualMachineConfigSpec{
			ExtraConfig: append([]types.BaseOptionValue{b.marker()}, b.guestinfo()...),
		},
	}
	if b.host != nil {
		h := b.host.Reference()
		spec.Location.Host = &h
	}
	if b.ds != nil {
		d := b.ds.Reference()
		spec.Location.Datastore = &d
	}
	if b.clone.LinkedClone {
		var o mo.VirtualMachine
		if err := b.source.Properties(ctx, b.source.Reference(), []string{"snapshot"}, &o); err != nil {
			return fmt.Errorf("reading the current snapshot of %s: %s", b.source.InventoryPath, explain(err))
		}
		if o.Snapshot == nil || o.Snapshot.CurrentSnapshot == nil {
			return fmt.Errorf("%s has no snapshot for a linked clone", b.source.InventoryPath)
		}
		spec.Snapshot = o.Snapshot.CurrentSnapshot
		spec.Location.DiskMoveType = string(types.VirtualMachineRelocateDiskMoveOptionsCreateNewChildDiskBacking)
	}
	kind := "full"
	if b.clone.LinkedClone {
		kind = "linked"
	}
	b.say("cloning %s to %s (%s clone)", b.source.InventoryPath, b.plannedPath(), kind)
	cctx, cancel := detached(ctx)
	t, err := b.source.Clone(cctx, b.folder, b.createName, spec)
	cancel()
	if err != nil {
		return fmt.Errorf("cloning %s: %s", b.source.InventoryPath, explain(err))
	}
	b.pending = t
	info, err := b.waitTask(ctx, t, "clone")
	if err != nil {
		if ctx.Err() != nil {
			// The clone goes on: the cleanup waits for it and removes
			// what it made.
			return context.Cause(ctx)
		}
		b.pending = nil
		return fmt.Errorf("cloning %s to %s: %s", b.source.InventoryPath, b.plannedPath(), explain(err))
	}
	b.adopt(info.Result.(types.ManagedObjectReference))
	b.say("cloned %s to %s", b.source.InventoryPath, b.vmPath)
	return nil
}

// adopt records the VM the build created.
func (b *build) adopt(ref types.ManagedObjectReference) {
	b.vm = object.NewVirtualMachine(b.sess.client.Client, ref)
	b.vmPath = path.Join(b.folder.InventoryPath, b.createName)
	b.vm.InventoryPath = b.vmPath
	b.pending = nil
}

// removeVM is the cleanup of the step that creates the VM: once the build
// is over, it removes the VM when the build failed or destroy = True. A VM
// whose creation was still running when the build was cancelled is waited
// for and removed too.
func (b *build) removeVM(ctx context.Context, failed bool) error {
	if !failed && !b.fin.Destroy {
		return nil
	}
	if b.vm == nil && b.pending != nil {
		info, err := b.pending.WaitForResult(ctx)
		if err != nil {
			// The task failed: vSphere made nothing to remove.
			b.pending = nil
			return nil
		}
		b.adopt(info.Result.(types.ManagedObjectReference))
	}
	if b.vm == nil || b.removed {
		return nil
	}
	why := "the build failed"
	if !failed {
		why = "destroy = True"
	}
	b.say("removing %s (%s)", b.vmPath, why)
	if err := b.destroyVM(ctx, b.vm, b.vmPath); err != nil {
		return err
	}
	b.removed = true
	return nil
}
