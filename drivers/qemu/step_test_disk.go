package qemu

import (
	"context"
	"os"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
)

// stepTestDisk describes the new image for the machine its tests run on:
// the converted disk (still under its temporary name), booted with the
// kernel and initrd read back from it when the build booted one directly,
// on the accelerator the build used. Its output is what the overlay and
// machine steps read of a disk, as stepInspect gives it for the input. It
// makes the test machine's scratch directory.
type stepTestDisk struct {
	dir     string
	inspect *stepInspect // the accelerator
	convert *stepConvert
	kernel  *stepReadKernel

	// output
	disk stepInspect
}

// Name implements step.Step.
func (s *stepTestDisk) Name() string { return "inspect new disk" }

// Run implements step.Step.
func (s *stepTestDisk) Run(ctx context.Context) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	info, err := qemuimg.Inspect(ctx, s.convert.disk)
	if err != nil {
		return err
	}
	s.disk = stepInspect{disk: s.convert.disk, info: info, accel: s.inspect.accel}
	if s.inspect.kernel != "" {
		s.disk.kernel, s.disk.initrd = s.kernel.kernel, s.kernel.initrd
	}
	return nil
}
