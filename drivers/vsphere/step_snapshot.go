package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
)

// stepSnapshot snapshots the shut-down VM (create_snapshot): linked clones
// of the result base their disks on it.
type stepSnapshot struct {
	env *buildEnv
	vm  *vmHandle
}

// Name implements step.Step.
func (s *stepSnapshot) Name() string { return "create snapshot" }

// Run implements step.Step.
func (s *stepSnapshot) Run(ctx context.Context) error {
	b, vm := s.env, s.vm
	b.say("taking snapshot %q of %s", b.fin.SnapshotName, vm.path)
	return b.doTask(ctx, "snapshot", fmt.Sprintf("taking snapshot %q of %s", b.fin.SnapshotName, vm.path), func() (*object.Task, error) {
		return vm.vm.CreateSnapshot(ctx, b.fin.SnapshotName, "Made by imgbuild build "+b.job.Name, false, false)
	})
}
