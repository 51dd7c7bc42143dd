package vsphere

import (
	"context"
	"fmt"

	"github.com/imgbuild/imgbuild/engine/step"
)

// snapshotStep snapshots the shut-down VM (create_snapshot): linked clones
// of the result base their disks on it.
func (b *build) snapshotStep() step.Step {
	return &step.Func{
		StepName: "create snapshot",
		RunFunc: func(ctx context.Context) error {
			b.say("taking snapshot %q of %s", b.fin.SnapshotName, b.vmPath)
			t, err := b.vm.CreateSnapshot(ctx, b.fin.SnapshotName, "Made by imgbuild build "+b.job.Name, false, false)
			if err == nil {
				_, err = b.waitTask(ctx, t, "snapshot")
			}
			if err != nil {
				return ctxErr(ctx, fmt.Errorf("taking snapshot %q of %s: %s", b.fin.SnapshotName, b.vmPath, explain(err)))
			}
			return nil
		},
	}
}
