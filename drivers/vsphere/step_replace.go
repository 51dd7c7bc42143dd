package vsphere

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/engine/step"
)

// replaceStep, with force, puts the new VM in the place of the one that
// held vm_name: the old one is renamed aside and the new one takes its
// name. Only once the whole build succeeded (post-processors included) is
// the old one removed; if anything fails, both names are put back and the
// old VM is as it was.
func (b *build) replaceStep() step.Step {
	r := &replacement{b: b}
	return &step.Func{
		StepName:  "replace existing VM",
		Artifact:  true,
		RunFunc:   r.run,
		CleanFunc: r.finish,
		LeftFunc:  r.left,
	}
}

// replacement is the state of a replaceStep.
type replacement struct {
	b          *build
	asideName  string // the old VM's name while it is set aside
	oldAside   bool   // the old VM was renamed aside
	newInPlace bool   // the new VM was renamed to vm_name
}

// rename renames vm, seeing the rename through even when the build is
// cancelled meanwhile: the step must know which name each VM has.
func rename(ctx context.Context, vm *object.VirtualMachine, name string) error {
	cctx, cancel := detached(ctx)
	defer cancel()
	t, err := vm.Rename(cctx, name)
	if err == nil {
		err = t.Wait(cctx)
	}
	return err
}

func (r *replacement) run(ctx context.Context) error {
	b := r.b
	if b.replace == nil {
		return nil
	}
	old := b.replace
	st, err := readState(ctx, old)
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("reading %s before replacing it: %s", old.InventoryPath, explain(err)))
	}
	if !st.Gone && st.Power != types.VirtualMachinePowerStatePoweredOff {
		return fmt.Errorf("%s is %s: it may be in use, so it is not replaced; power it off and run the build again", old.InventoryPath, st.Power)
	}
	if !st.Gone {
		r.asideName = b.name + "-imgbuild-old-" + b.id[:8]
		b.say("renaming %s to %s to replace it (force = True)", old.InventoryPath, r.asideName)
		if err := rename(ctx, old, r.asideName); err != nil {
			return ctxErr(ctx, fmt.Errorf("renaming %s aside to replace it: %s", old.InventoryPath, explain(err)))
		}
		r.oldAside = true
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
	}
	b.say("renaming %s to %s", b.vmPath, b.name)
	if err := rename(ctx, b.vm, b.name); err != nil {
		return ctxErr(ctx, fmt.Errorf("renaming %s to %s: %s", b.vmPath, b.name, explain(err)))
	}
	r.newInPlace = true
	b.vmPath = path.Join(b.folder.InventoryPath, b.name)
	b.vm.InventoryPath = b.vmPath
	return ctxErr(ctx, nil)
}

// finish removes the old VM once the build succeeded, or puts both names
// back when it failed (the new VM is then removed by its own cleanup).
func (r *replacement) finish(ctx context.Context, failed bool) error {
	b := r.b
	if !failed {
		if !r.oldAside {
			return nil
		}
		aside := path.Join(b.folder.InventoryPath, r.asideName)
		b.say("removing the replaced %s", aside)
		t, err := b.replace.Destroy(ctx)
		if err == nil {
			err = t.Wait(ctx)
		}
		if err != nil {
			return fmt.Errorf("removing the replaced VM %s: %s", aside, explain(err))
		}
		r.oldAside = false
		return nil
	}
	var errs []error
	if r.newInPlace {
		if err := rename(ctx, b.vm, b.createName); err != nil {
			errs = append(errs, fmt.Errorf("renaming the new VM back to %s: %s", b.createName, explain(err)))
		} else {
			r.newInPlace = false
			b.vmPath = path.Join(b.folder.InventoryPath, b.createName)
			b.vm.InventoryPath = b.vmPath
		}
	}
	if r.oldAside && !r.newInPlace {
		if err := rename(ctx, b.replace, b.name); err != nil {
			errs = append(errs, fmt.Errorf("renaming %s back to %s: %s", r.asideName, b.name, explain(err)))
		} else {
			r.oldAside = false
			b.say("put %s back", b.replace.InventoryPath)
		}
	}
	return errors.Join(errs...)
}

func (r *replacement) left() []string {
	if !r.oldAside {
		return nil
	}
	return []string{fmt.Sprintf("the VM this build replaces, renamed to %s (its name was %s)", path.Join(r.b.folder.InventoryPath, r.asideName), r.b.name)}
}
