package qemu

import (
	"context"
	"errors"

	"github.com/imgbuild/imgbuild/engine"
)

// stepProvision runs the build's provisioners over the SSH connection.
// When the machine stops by itself meanwhile, the error says so and quotes
// its console.
type stepProvision struct {
	job     *engine.Job
	machine *stepStartMachine
	conn    *connection
}

// Name implements step.Step.
func (s *stepProvision) Name() string { return "provision" }

// Run implements step.Step.
func (s *stepProvision) Run(ctx context.Context) error {
	m := s.machine.machine
	ctx, done := guard(ctx, m, s.conn)
	defer done()
	comm := s.conn.get()
	if comm == nil {
		return causeOf(ctx, errors.New("no SSH connection to the machine"))
	}
	if err := s.job.Provision(ctx, comm); err != nil {
		return explain(ctx, m, err)
	}
	return nil
}
