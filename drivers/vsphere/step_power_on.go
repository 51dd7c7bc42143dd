package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
)

// stepPowerOn powers the VM on. If the build fails while it runs, the
// cleanup powers it off hard (the VM is removed after).
type stepPowerOn struct {
	env *buildEnv
	vm  *vmHandle
}

// Name implements step.Step.
func (s *stepPowerOn) Name() string { return "power on" }

// Run implements step.Step.
func (s *stepPowerOn) Run(ctx context.Context) error {
	b, vm := s.env, s.vm
	b.say("powering on %s", vm.path)
	return b.doTask(ctx, "power on", "powering on "+vm.path, func() (*object.Task, error) {
		cctx, cancel := detached(ctx)
		defer cancel()
		return vm.vm.PowerOn(cctx)
	})
}

// Cleanup powers the VM off hard if the build failed.
func (s *stepPowerOn) Cleanup(ctx context.Context, failed bool) error {
	b, vm := s.env, s.vm
	if !failed || vm.vm == nil || vm.removed {
		return nil
	}
	st, err := readState(ctx, vm.vm)
	if err != nil || st.Gone || st.Power == "poweredOff" {
		return nil // removing the VM deals with it
	}
	if st.Marker != b.id {
		return fmt.Errorf("refusing to power off %s: it does not carry this build's mark", vm.path)
	}
	b.say("powering off %s", vm.path)
	if err := powerOff(ctx, vm.vm); err != nil {
		return fmt.Errorf("powering off %s: %s", vm.path, explain(err))
	}
	return nil
}

// Leftovers implements step.Leaver.
func (s *stepPowerOn) Leftovers() []string {
	if s.vm.vm == nil || s.vm.removed {
		return nil
	}
	return []string{"VM " + s.vm.path + " may be left powered on"}
}
