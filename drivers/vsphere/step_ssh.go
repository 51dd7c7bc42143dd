package vsphere

import (
	"context"

	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine/step"
)

// sshStep connects to the guest over SSH: at ssh_host when set, else at the
// address VMware Tools reported, with the build's key (installed through
// guestinfo) and the user's credentials. The cleanup closes the connection.
func (b *build) sshStep() step.Step {
	return &step.Func{
		StepName: "connect via SSH",
		RunFunc: func(ctx context.Context) error {
			opts := b.fin.SSH
			if opts.Host == "" {
				opts.Host = b.ip
			}
			comm, err := ssh.Connect(ctx, ssh.Config{Options: opts, Key: b.key, UI: b.job.UI})
			if err != nil {
				return err
			}
			b.comm = comm
			return nil
		},
		CleanFunc: func(ctx context.Context, failed bool) error {
			if b.comm == nil {
				return nil
			}
			err := b.comm.Close()
			b.comm = nil
			return err
		},
	}
}
