package qemu

import (
	"context"
	"fmt"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/imgbuild/imgbuild/drivers/qemu/vm"
	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/retry"
)

// stepWaitForSSH waits, within ssh_timeout, for the machine's SSH server to
// answer on the forwarded port, learns its host key on that first contact
// and logs in with the build's key. Its cleanup closes the connection.
type stepWaitForSSH struct {
	ui      *event.UI
	cfg     *Config
	machine *stepStartMachine // the machine, its port and the build's key

	// output: the connection, once made
	conn *connection
}

// Name implements step.Step.
func (s *stepWaitForSSH) Name() string { return "wait for SSH" }

// Run implements step.Step.
func (s *stepWaitForSSH) Run(ctx context.Context) error {
	m := s.machine.machine
	ctx, done := guard(ctx, m, s.conn)
	defer done()
	c := s.cfg
	if d := c.BootWait; d > 0 && len(c.BootCommand) == 0 {
		s.ui.Say("waiting %s before connecting (boot_wait)", d)
		if err := retry.Sleep(ctx, d); err != nil {
			return err
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", s.machine.port)
	start := time.Now()
	deadline := start.Add(c.SSH.Timeout)
	s.ui.Say("waiting up to %s for SSH on %s", c.SSH.Timeout, addr)
	hostKey, err := vm.WaitForHostKey(ctx, addr, c.SSH.Username, deadline, func(waited time.Duration, last error) {
		s.ui.Say("still waiting for SSH (%s): %v", waited.Round(time.Second), last)
	})
	if err != nil {
		if ctx.Err() != nil {
			return causeOf(ctx, context.Cause(ctx))
		}
		return fmt.Errorf("SSH did not come up within ssh_timeout (%s): nothing answered SSH on %s, forwarded to the machine's port %d (last attempt: %v); qemu is still running. The last lines of the serial console:\n%s\nDoes the image start an SSH server on port %d and take an address by DHCP? (With a kernel of your own, append needs console=ttyS0 for its messages to show here.)",
			c.SSH.Timeout, addr, c.SSH.Port, err, indent(m.ConsoleTail(consoleLines)), c.SSH.Port)
	}
	s.ui.Say("SSH answered after %s (host key %s)", time.Since(start).Round(100*time.Millisecond), gossh.FingerprintSHA256(hostKey))
	opts := c.SSH
	opts.Host, opts.Port = "127.0.0.1", s.machine.port
	if remaining := time.Until(deadline); remaining > 30*time.Second {
		opts.Timeout = remaining
	} else {
		opts.Timeout = 30 * time.Second
	}
	comm, err := ssh.Connect(ctx, ssh.Config{Options: opts, HostKey: hostKey, Key: s.machine.key, UI: s.ui})
	if err != nil {
		if cause := causeOf(ctx, nil); cause != nil {
			return cause
		}
		return fmt.Errorf("logging in over SSH: %w. The machine was given the build's key as an SMBIOS credential (systemd 252 or later installs it for root) %s; the last lines of the serial console:\n%s",
			err, s.keyHint(), indent(m.ConsoleTail(consoleLines)))
	}
	s.conn.set(comm)
	return nil
}

func (s *stepWaitForSSH) keyHint() string {
	if s.cfg.CloudInit {
		return "and a cloud-init NoCloud seed"
	}
	return "(set cloud_init = True if the image installs keys with cloud-init instead)"
}

// Cleanup implements step.Cleaner.
func (s *stepWaitForSSH) Cleanup(ctx context.Context, failed bool) error {
	s.conn.close()
	return nil
}
