package local

import "context"

// stepCheckOutput refuses, before anything is made, an output directory
// that holds what the build may not replace (see output.Set), or whose
// path leaves the workspace.
type stepCheckOutput struct {
	target *target
}

// Name implements step.Step.
func (s *stepCheckOutput) Name() string { return "check output directory" }

// Run implements step.Step.
func (s *stepCheckOutput) Run(ctx context.Context) error {
	return s.target.outs.Check(s.target.rel, "output_directory")
}
