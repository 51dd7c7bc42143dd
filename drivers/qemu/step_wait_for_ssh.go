package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"

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
	var hostKey gossh.PublicKey
	lastSaid := start
	// A short wait for the banner while the machine boots, longer when it
	// keeps timing out (a slow machine that does answer).
	wait, timeouts := 2*time.Second, 0
	for {
		k, err := probeHostKey(ctx, addr, c.SSH.Username, wait)
		if err == nil {
			hostKey = k
			break
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if timeouts++; timeouts%5 == 0 && wait < 16*time.Second {
				wait *= 2
			}
			err = fmt.Errorf("no SSH banner within %s", wait)
		}
		if ctx.Err() != nil {
			return causeOf(ctx, context.Cause(ctx))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("SSH did not come up within ssh_timeout (%s): nothing answered SSH on %s, forwarded to the machine's port %d (last attempt: %v); qemu is still running. The last lines of the serial console:\n%s\nDoes the image start an SSH server on port %d and take an address by DHCP? (With a kernel of your own, append needs console=ttyS0 for its messages to show here.)",
				c.SSH.Timeout, addr, c.SSH.Port, err, indent(m.ConsoleTail(consoleLines)), c.SSH.Port)
		}
		if time.Since(lastSaid) > 30*time.Second {
			s.ui.Say("still waiting for SSH (%s): %v", time.Since(start).Round(time.Second), err)
			lastSaid = time.Now()
		}
		if err := retry.Sleep(ctx, 500*time.Millisecond); err != nil {
			return causeOf(ctx, err)
		}
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

// errGotKey ends a probe's handshake once the host key is known.
var errGotKey = errors.New("host key received")

// probeHostKey connects to addr and starts an SSH handshake only to learn
// the server's host key. The port is one QEMU listens on for this build
// alone, so what answers is this build's machine.
//
// QEMU accepts the connection at once and only then tries the guest, which
// does not answer at all while it boots: the probe gives up after wait and
// tries again.
func probeHostKey(ctx context.Context, addr, user string, wait time.Duration) (gossh.PublicKey, error) {
	d := net.Dialer{Timeout: 3 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var key gossh.PublicKey
	_, _, _, err = gossh.NewClientConn(conn, addr, &gossh.ClientConfig{
		User: user,
		HostKeyCallback: func(_ string, _ net.Addr, k gossh.PublicKey) error {
			key = k
			return errGotKey
		},
	})
	if key != nil {
		return key, nil
	}
	if err == nil {
		err = errors.New("the handshake ended without a host key")
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "EOF") {
		err = fmt.Errorf("nothing answers on the machine's port yet (%v)", err)
	}
	return nil, err
}
