package vsphere

import (
	"context"
	"strings"
	"testing"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/drivers/vsphere/vcsimtest"
)

// These tests build steps alone and run them one by one against vcsim, each
// given only the build's environment and the earlier steps it reads: no
// Build function, no step runner.

func TestPlacementAlonePlansATemporaryNameToReplaceAVMWithForce(t *testing.T) {
	e := newVCEnv(t)
	ctx := context.Background()
	j, _ := e.job(CloneDef(), "web", e.cloneKW(map[string]any{"vm_name": vcsimtest.Template, "force": true}))
	b, err := newBuild(j)
	if err != nil {
		t.Fatal(err)
	}
	vc := &stepConnect{env: b}
	if err := vc.Run(ctx); err != nil {
		t.Fatal(err)
	}
	defer vc.Cleanup(ctx, false)
	place := &stepPlacement{env: b, vc: vc}
	if err := place.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if place.replace == nil || place.replace.InventoryPath != "/DC0/vm/"+vcsimtest.Template {
		t.Fatalf("the VM to replace: %v", place.replace)
	}
	if want := vcsimtest.Template + "-imgbuild-" + b.id[:8]; place.createName != want {
		t.Errorf("created under %q, want %q", place.createName, want)
	}
	if place.source == nil || place.pool == nil {
		t.Errorf("source %v, pool %v: want both found", place.source, place.pool)
	}
}

func TestCloneAndPowerOnAloneAreUndoneByTheirCleanups(t *testing.T) {
	e := newVCEnv(t)
	ctx := context.Background()
	before := e.snapshot(t)
	j, _ := e.job(CloneDef(), "web", e.cloneKW(map[string]any{"vm_name": "alone"}))
	b, err := newBuild(j)
	if err != nil {
		t.Fatal(err)
	}
	vc := &stepConnect{env: b}
	place := &stepPlacement{env: b, vc: vc}
	vm := &vmHandle{env: b, vc: vc, place: place}
	clone, power := &stepClone{vm: vm}, &stepPowerOn{env: b, vm: vm}
	for _, s := range []interface{ Run(context.Context) error }{vc, place, clone, power} {
		if err := s.Run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	defer vc.Cleanup(ctx, true)
	got := e.sim.VM(t, "alone")
	if got.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn || vcsimtest.ExtraConfig(got)[markerKey] != b.id {
		t.Fatalf("the clone is %s with mark %q; want powered on, with %q", got.Runtime.PowerState, vcsimtest.ExtraConfig(got)[markerKey], b.id)
	}
	if left := clone.Leftovers(); len(left) != 1 || !strings.HasPrefix(left[0], "VM /DC0/vm/alone (") {
		t.Errorf("the clone's leftovers: %q", left)
	}
	// The build failed: power off, then remove, in reverse order.
	if err := power.Cleanup(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := clone.Cleanup(ctx, true); err != nil {
		t.Fatal(err)
	}
	e.noLeftovers(t, before)
}
