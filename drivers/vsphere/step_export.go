package vsphere

import (
	"context"

	"github.com/imgbuild/imgbuild/engine/step"
)

// exportStep exports the VM to OVF or OVA files (export). The files are
// part of the artifact: if the build fails, even in a post-processor, they
// are removed.
func (b *build) exportStep() step.Step {
	run := &exportRun{}
	return &step.Func{
		StepName:  "export",
		Artifact:  true,
		RunFunc:   func(ctx context.Context) error { return b.runExport(ctx, run) },
		CleanFunc: run.undo,
		LeftFunc: func() []string {
			var out []string
			if run.lease != nil {
				out = append(out, "an export lease on "+b.vmPath)
			}
			if run.tmp != "" {
				out = append(out, "scratch directory "+b.shown(run.tmp))
			}
			for _, f := range run.moved {
				out = append(out, "file "+b.shown(f))
			}
			return out
		},
	}
}
