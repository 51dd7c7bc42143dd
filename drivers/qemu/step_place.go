package qemu

import (
	"context"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/engine/output"
)

// stepPlace publishes the outputs, once the image passed its tests: the
// disk and the kernel and initrd read back move from their temporary names
// into the output directory, and the disk's checksum is taken. Until then
// nothing of the build is in the output directory under its own name.
type stepPlace struct {
	out     *output.Dir
	name    string // the disk's file name
	convert *stepConvert
	kernel  *stepReadKernel // its files, when it ran

	// outputs, absolute
	disk, kernelFile, initrdFile string
	checksum                     string // "sha256:<hex>"
}

// Name implements step.Step.
func (s *stepPlace) Name() string { return "place outputs" }

// Run implements step.Step.
func (s *stepPlace) Run(ctx context.Context) error {
	for _, name := range s.kernel.names {
		final, err := s.out.Done(name)
		if err != nil {
			return err
		}
		if name == "vmlinuz" {
			s.kernelFile = final
		} else {
			s.initrdFile = final
		}
	}
	final, err := s.out.Done(s.name)
	if err != nil {
		return err
	}
	s.disk = final
	sum, err := qemuimg.SHA256(ctx, final)
	if err != nil {
		return err
	}
	s.checksum = "sha256:" + sum
	return nil
}
