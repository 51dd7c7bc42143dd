package qemu

import (
	"context"

	"github.com/imgbuild/imgbuild/engine/output"
)

// stepCheckOutput refuses, before anything starts, to replace the files a
// previous run left in the output directory, unless force is set.
type stepCheckOutput struct {
	cfg  *Config
	out  *output.Dir
	disk string // the output disk's file name
}

// Name implements step.Step.
func (s *stepCheckOutput) Name() string { return "check output directory" }

// Run implements step.Step.
func (s *stepCheckOutput) Run(ctx context.Context) error {
	names := []string{s.disk}
	if s.cfg.Kernel != "" {
		names = append(names, "vmlinuz", "initrd.img")
	}
	return s.out.Check("output_directory", s.cfg.Force, names...)
}
