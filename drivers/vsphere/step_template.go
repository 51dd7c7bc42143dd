package vsphere

import (
	"context"
	"fmt"

	"github.com/imgbuild/imgbuild/engine/step"
)

// templateStep turns the VM into a template (convert_to_template). A
// failed build removes the template like the VM it was.
func (b *build) templateStep() step.Step {
	return &step.Func{
		StepName: "convert to template",
		RunFunc: func(ctx context.Context) error {
			b.say("converting %s to a template", b.vmPath)
			if err := b.vm.MarkAsTemplate(ctx); err != nil {
				return ctxErr(ctx, fmt.Errorf("converting %s to a template: %s", b.vmPath, explain(err)))
			}
			b.templated = true
			return nil
		},
	}
}
