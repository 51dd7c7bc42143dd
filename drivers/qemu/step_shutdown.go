package qemu

import (
	"context"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
)

// stepShutdown removes the build's key from the machine, syncs its disks
// and powers it off with shutdown_command, stopping it by force if it has
// not powered off within shutdown_timeout.
type stepShutdown struct {
	ui      *event.UI
	cfg     *Config
	machine *stepStartMachine // the machine and the build's key
	conn    *connection       // closed once the command is sent
}

// Name implements step.Step.
func (s *stepShutdown) Name() string { return "shut down" }

// Run implements step.Step.
func (s *stepShutdown) Run(ctx context.Context) error {
	m, c := s.machine.machine, s.cfg
	start := time.Now()
	if comm := s.conn.get(); comm != nil {
		s.forgetKey(ctx, comm)
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if status, err := comm.Run(sctx, &engine.Command{Command: "sync"}); err != nil || status != 0 {
			s.ui.Warn("sync before shutting down failed (status %d, %v)", status, err)
		}
		cancel()
		if cmd := c.ShutdownCommand; cmd != "" {
			s.ui.Say("shutting down: %s", cmd)
			var out strings.Builder
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			status, err := comm.Run(cctx, &engine.Command{Command: cmd, Stdout: &out, Stderr: &out})
			cancel()
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if err == nil && status != 0 {
				s.ui.Warn("shutdown_command %q exited with status %d: %s", cmd, status, strings.TrimSpace(out.String()))
			}
		}
		s.conn.close()
	}
	if c.ShutdownCommand == "" {
		s.ui.Say("stopping the machine (shutdown_command is empty)")
		m.Stop(10 * time.Second)
		return nil
	}
	if m.Wait(ctx, c.ShutdownTimeout) {
		s.ui.Say("the machine powered off in %s", time.Since(start).Round(100*time.Millisecond))
		return nil
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	s.ui.Warn("the machine did not power off within shutdown_timeout (%s) after %q: stopping it by force (its disks were synced first); the last lines of the serial console:\n%s",
		c.ShutdownTimeout, c.ShutdownCommand, indent(m.ConsoleTail(5)))
	m.Stop(10 * time.Second)
	return nil
}

// forgetKey removes the build's key from the SSH user's authorized_keys,
// and the file itself if that empties it: the key is of no use once the
// build is over (its private half was never written anywhere), and a file
// left behind would keep systemd from installing the next machine's key.
func (s *stepShutdown) forgetKey(ctx context.Context, comm engine.Communicator) {
	fields := strings.Fields(s.machine.key.AuthorizedKey())
	if len(fields) < 2 {
		return
	}
	script := `f=~/.ssh/authorized_keys; [ -f "$f" ] || exit 0; ` +
		`grep -vF '` + fields[1] + `' "$f" > "$f.imgbuild" || true; ` +
		`if [ -s "$f.imgbuild" ]; then cat "$f.imgbuild" > "$f"; else rm -f "$f"; fi; rm -f "$f.imgbuild"`
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out strings.Builder
	user := s.cfg.SSH.Username
	if status, err := comm.Run(cctx, &engine.Command{Command: script, Stdout: &out, Stderr: &out}); err != nil || status != 0 {
		s.ui.Warn("could not remove the build's SSH key from %s's authorized_keys (status %d, %v): %s", user, status, err, strings.TrimSpace(out.String()))
		return
	}
	s.ui.Say("removed the build's SSH key from %s's authorized_keys", user)
}
