package vsphere

import (
	"context"
	"fmt"
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
	cctx, cancel := detached(ctx)
	t, err := vm.vm.PowerOn(cctx)
	cancel()
	if err == nil {
		_, err = b.waitTask(ctx, t, "power on")
	}
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("powering on %s: %s", vm.path, explain(err)))
	}
	return nil
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
