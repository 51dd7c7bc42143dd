package local

import (
	"context"

	"github.com/imgbuild/imgbuild/engine"
)

// stepOpenDirectory opens a fresh local communicator on the provisioned
// scratch directory, for the build's tests: a local build tests the very
// directory it made, before it becomes the output directory. Its cleanup
// closes it.
type stepOpenDirectory struct {
	cfg     *Config // env
	scratch *stepCreateScratch

	// output
	comm *Comm
}

// Name implements step.Step.
func (s *stepOpenDirectory) Name() string { return "open the build's directory" }

// Run implements step.Step.
func (s *stepOpenDirectory) Run(ctx context.Context) error {
	comm, err := NewCommunicator(s.scratch.dir, s.cfg.Env)
	if err != nil {
		return err
	}
	s.comm = comm
	return nil
}

// Communicator implements engine.Connection.
func (s *stepOpenDirectory) Communicator() engine.Communicator {
	if s.comm == nil {
		return nil
	}
	return s.comm
}

// Cleanup implements step.Cleaner.
func (s *stepOpenDirectory) Cleanup(ctx context.Context, failed bool) error {
	if s.comm != nil {
		s.comm.Close()
		s.comm = nil
	}
	return nil
}
