package local

import (
	"context"

	"github.com/imgbuild/imgbuild/engine"
)

// stepProvision runs the build's provisioners in the scratch directory,
// through a local communicator rooted there.
type stepProvision struct {
	job     *engine.Job
	cfg     *Config // env
	scratch *stepCreateScratch
}

// Name implements step.Step.
func (s *stepProvision) Name() string { return "provision" }

// Run implements step.Step.
func (s *stepProvision) Run(ctx context.Context) error {
	comm, err := NewCommunicator(s.scratch.dir, s.cfg.Env)
	if err != nil {
		return err
	}
	defer comm.Close()
	return s.job.Provision(ctx, comm)
}
