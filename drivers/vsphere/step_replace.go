package vsphere

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// stepReplace, with force, puts the new VM in the place of the one that
// held vm_name: the old one is renamed aside and the new one takes its
// name. Only once the whole build succeeded (post-processors included) is
// the old one removed; if anything fails, both names are put back and the
// old VM is as it was.
type stepReplace struct {
	env   *buildEnv
	vm    *vmHandle      // renamed to vm_name
	place *stepPlacement // the VM to replace, the folder, the name the new one was made under

	// outputs
	asideName  string // the old VM's name while it is set aside
	oldAside   bool   // the old VM was renamed aside
	newInPlace bool   // the new VM was renamed to vm_name
}

// Name implements step.Step.
func (s *stepReplace) Name() string { return "replace existing VM" }

// MakesArtifact implements step.Artifact.
func (s *stepReplace) MakesArtifact() bool { return true }

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

// Run implements step.Step.
func (s *stepReplace) Run(ctx context.Context) error {
	b, r, place := s.env, s, s.place
	if place.replace == nil {
		return nil
	}
	old := place.replace
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
	b.say("renaming %s to %s", s.vm.path, b.name)
	if err := rename(ctx, s.vm.vm, b.name); err != nil {
		return ctxErr(ctx, fmt.Errorf("renaming %s to %s: %s", s.vm.path, b.name, explain(err)))
	}
	r.newInPlace = true
	s.vm.path = path.Join(place.folder.InventoryPath, b.name)
	s.vm.vm.InventoryPath = s.vm.path
	return ctxErr(ctx, nil)
}

// Cleanup removes the old VM once the build succeeded, or puts both names
// back when it failed (the new VM is then removed by its own cleanup).
func (s *stepReplace) Cleanup(ctx context.Context, failed bool) error {
	b, r, place := s.env, s, s.place
	if !failed {
		if !r.oldAside {
			return nil
		}
		aside := path.Join(place.folder.InventoryPath, r.asideName)
		b.say("removing the replaced %s", aside)
		t, err := place.replace.Destroy(ctx)
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
		if err := rename(ctx, s.vm.vm, place.createName); err != nil {
			errs = append(errs, fmt.Errorf("renaming the new VM back to %s: %s", place.createName, explain(err)))
		} else {
			r.newInPlace = false
			s.vm.path = path.Join(place.folder.InventoryPath, place.createName)
			s.vm.vm.InventoryPath = s.vm.path
		}
	}
	if r.oldAside && !r.newInPlace {
		if err := rename(ctx, place.replace, b.name); err != nil {
			errs = append(errs, fmt.Errorf("renaming %s back to %s: %s", r.asideName, b.name, explain(err)))
		} else {
			r.oldAside = false
			b.say("put %s back", place.replace.InventoryPath)
		}
	}
	return errors.Join(errs...)
}

// Leftovers implements step.Leaver.
func (s *stepReplace) Leftovers() []string {
	if !s.oldAside {
		return nil
	}
	return []string{fmt.Sprintf("the VM this build replaces, renamed to %s (its name was %s)", path.Join(s.place.folder.InventoryPath, s.asideName), s.env.name)}
}
