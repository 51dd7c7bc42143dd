package vsphere

import (
	"context"
	"fmt"
)

// stepTemplate turns the VM into a template (convert_to_template). A
// failed build removes the template like the VM it was.
type stepTemplate struct {
	env *buildEnv
	vm  *vmHandle // marked templated
}

// Name implements step.Step.
func (s *stepTemplate) Name() string { return "convert to template" }

// Run implements step.Step.
func (s *stepTemplate) Run(ctx context.Context) error {
	vm := s.vm
	s.env.say("converting %s to a template", vm.path)
	if err := vm.vm.MarkAsTemplate(ctx); err != nil {
		return ctxErr(ctx, fmt.Errorf("converting %s to a template: %s", vm.path, explain(err)))
	}
	vm.templated = true
	return nil
}
