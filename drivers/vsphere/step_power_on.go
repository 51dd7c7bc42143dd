package vsphere

import (
	"context"
	"fmt"

	"github.com/imgbuild/imgbuild/engine/step"
)

// powerOnStep powers the VM on. If the build fails while it runs, the
// cleanup powers it off hard (the VM is removed after).
func (b *build) powerOnStep() step.Step {
	return &step.Func{
		StepName: "power on",
		RunFunc: func(ctx context.Context) error {
			b.say("powering on %s", b.vmPath)
			cctx, cancel := detached(ctx)
			t, err := b.vm.PowerOn(cctx)
			cancel()
			if err == nil {
				_, err = b.waitTask(ctx, t, "power on")
			}
			if err != nil {
				return ctxErr(ctx, fmt.Errorf("powering on %s: %s", b.vmPath, explain(err)))
			}
			return nil
		},
		CleanFunc: func(ctx context.Context, failed bool) error {
			if !failed || b.vm == nil || b.removed {
				return nil
			}
			st, err := readState(ctx, b.vm)
			if err != nil || st.Gone || st.Power == "poweredOff" {
				return nil // removing the VM deals with it
			}
			if st.Marker != b.id {
				return fmt.Errorf("refusing to power off %s: it does not carry this build's mark", b.vmPath)
			}
			b.say("powering off %s", b.vmPath)
			if err := powerOff(ctx, b.vm); err != nil {
				return fmt.Errorf("powering off %s: %s", b.vmPath, explain(err))
			}
			return nil
		},
		LeftFunc: func() []string {
			if b.vm == nil || b.removed {
				return nil
			}
			return []string{"VM " + b.vmPath + " may be left powered on"}
		},
	}
}
