package engine

import "context"

// Connection is a step that connects to the build's machine. The step that
// provisions reads its Communicator once it has run; nil means it made no
// connection.
type Connection interface {
	Communicator() Communicator
}

// ProvisionStep is the "provision" step of builders that need nothing more
// than a connection to provision their machine: it runs the job's
// provisioners, in order, over the communicator Over (an earlier step)
// connected.
type ProvisionStep struct {
	Job  *Job
	Over Connection
}

// Name implements step.Step.
func (s *ProvisionStep) Name() string { return "provision" }

// Run implements step.Step.
func (s *ProvisionStep) Run(ctx context.Context) error {
	return s.Job.Provision(ctx, s.Over.Communicator())
}
