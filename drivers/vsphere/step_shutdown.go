package vsphere

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/engine"
)

// stepShutdown shuts the guest down, with shutdown_command over SSH or
// through VMware Tools, and waits up to shutdown_timeout for the VM to
// power off: a captured image must come from a cleanly stopped system.
type stepShutdown struct {
	env *buildEnv
	vm  *vmHandle
	ssh *stepSSH // runs shutdown_command; closed once it is sent
}

// Name implements step.Step.
func (s *stepShutdown) Name() string { return "shut down" }

// Run implements step.Step.
func (s *stepShutdown) Run(ctx context.Context) error {
	b := s.env
	how := ""
	if cmd := b.fin.ShutdownCommand; cmd != "" {
		how = "shutdown_command"
		b.say("shutting down %s with shutdown_command", s.vm.path)
		out, errOut := b.job.UI.Lines("stdout"), b.job.UI.Lines("stderr")
		status, err := s.ssh.Comm.Run(ctx, &engine.Command{Command: cmd, Stdout: out, Stderr: errOut})
		out.Close()
		errOut.Close()
		switch {
		case err != nil && errors.Is(err, engine.ErrDisconnected):
			// The guest went down under the command: expected.
		case err != nil:
			return ctxErr(ctx, fmt.Errorf("running shutdown_command: %w", err))
		case status != 0:
			b.job.UI.Warn("shutdown_command exited with status %d; waiting for the VM to power off anyway", status)
		}
	} else {
		how = "a guest shutdown through VMware Tools"
		var o mo.VirtualMachine
		if err := s.vm.vm.Properties(ctx, s.vm.vm.Reference(), []string{"guest.toolsRunningStatus"}, &o); err != nil {
			return ctxErr(ctx, fmt.Errorf("reading the VMware Tools status of %s: %s", s.vm.path, explain(err)))
		}
		if o.Guest == nil || o.Guest.ToolsRunningStatus != string(types.VirtualMachineToolsRunningStatusGuestToolsRunning) {
			return fmt.Errorf("VMware Tools are not running in %s, so it cannot be shut down through them: install open-vm-tools in the image, or set shutdown_command (\"sudo systemctl poweroff\")", s.vm.path)
		}
		b.say("shutting down %s through VMware Tools", s.vm.path)
		if err := s.vm.vm.ShutdownGuest(ctx); err != nil {
			return ctxErr(ctx, fmt.Errorf("asking VMware Tools to shut %s down: %s", s.vm.path, explain(err)))
		}
	}
	// The connection dies with the guest; close it now rather than let its
	// keepalives find out.
	if s.ssh.Comm != nil {
		_ = s.ssh.Comm.Close()
		s.ssh.Comm = nil
	}
	wctx, cancel := context.WithTimeout(ctx, b.fin.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	if err := waitPowerState(wctx, s.vm.vm, types.VirtualMachinePowerStatePoweredOff); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if wctx.Err() != nil {
			return fmt.Errorf("%s did not power off within shutdown_timeout (%s) after %s: check that the command shuts the system down (and that sudo needs no password), or raise shutdown_timeout", s.vm.path, b.fin.ShutdownTimeout, how)
		}
		return fmt.Errorf("waiting for %s to power off: %s", s.vm.path, explain(err))
	}
	b.say("%s powered off after %s", s.vm.path, time.Since(start).Round(time.Millisecond))
	return nil
}
