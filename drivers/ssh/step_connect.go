package ssh

import (
	"context"

	"github.com/imgbuild/imgbuild/engine"
)

// ConnectStep is the step that connects to a machine whose address and
// credentials are known before the build starts (null()): it connects with
// Config, and its cleanup closes the connection. Builders that learn the
// address on the way write a step of their own around Connect.
type ConnectStep struct {
	Config Config

	// Comm is the connection, once made.
	Comm *Communicator
}

// Name implements step.Step.
func (s *ConnectStep) Name() string { return "connect" }

// Run implements step.Step.
func (s *ConnectStep) Run(ctx context.Context) error {
	comm, err := Connect(ctx, s.Config)
	if err != nil {
		return err
	}
	s.Comm = comm
	return nil
}

// Communicator implements engine.Connection.
func (s *ConnectStep) Communicator() engine.Communicator {
	if s.Comm == nil {
		return nil
	}
	return s.Comm
}

// Cleanup closes the connection.
func (s *ConnectStep) Cleanup(ctx context.Context, failed bool) error {
	if s.Comm == nil {
		return nil
	}
	return s.Comm.Close()
}
