package vsphere

import (
	"context"

	"github.com/imgbuild/imgbuild/engine/step"
)

// provisionStep runs the build's provisioners over the SSH connection.
func (b *build) provisionStep() step.Step {
	return &step.Func{
		StepName: "provision",
		RunFunc:  func(ctx context.Context) error { return b.job.Provision(ctx, b.comm) },
	}
}
