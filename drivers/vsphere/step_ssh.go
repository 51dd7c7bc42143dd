package vsphere

import (
	"context"

	"github.com/imgbuild/imgbuild/drivers/ssh"
)

// stepSSH connects to the guest over SSH: at ssh_host when set, else at the
// address VMware Tools reported, with the build's key (installed through
// guestinfo) and the user's credentials. The cleanup closes the connection
// (its output, Comm, and the cleanup are ssh.ConnectStep's).
type stepSSH struct {
	ssh.ConnectStep
	env *buildEnv
	ip  *stepWaitIP // the guest's address, unless ssh_host
	key *ssh.Key    // the key to log in with; nil: the build's
}

// Name implements step.Step.
func (s *stepSSH) Name() string { return "connect via SSH" }

// Run implements step.Step.
func (s *stepSSH) Run(ctx context.Context) error {
	opts := s.env.fin.SSH
	if opts.Host == "" {
		opts.Host = s.ip.ip
	}
	key := s.key
	if key == nil {
		key = s.env.key
	}
	s.Config = ssh.Config{Options: opts, Key: key, UI: s.env.job.UI}
	return s.ConnectStep.Run(ctx)
}
