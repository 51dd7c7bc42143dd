package rootfs

import (
	"context"

	"github.com/imgbuild/imgbuild/engine/output"
)

// stepCheckOutput refuses, before anything starts, to replace the files a
// previous run left in the output directory, unless force is set.
type stepCheckOutput struct {
	cfg   *Config
	out   *output.Dir
	build string // the build's name, which names the outputs
}

// Name implements step.Step.
func (s *stepCheckOutput) Name() string { return "check output directory" }

// Run implements step.Step.
func (s *stepCheckOutput) Run(ctx context.Context) error {
	var names []string
	for _, kind := range append([]string{"kernel", "initrd"}, s.cfg.Formats...) {
		names = append(names, outputName(s.build, kind))
	}
	return s.out.Check("output_directory", s.cfg.Force, names...)
}
