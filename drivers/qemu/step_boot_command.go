package qemu

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/drivers/bootcmd"
	"github.com/imgbuild/imgbuild/drivers/qemu/vm"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/retry"
)

// stepBootCommand waits boot_wait, then types boot_command on the
// machine's keyboard through QEMU's QMP send-key, with {http_ip} the
// address the guest reaches this machine at (10.0.2.2).
type stepBootCommand struct {
	ui      *event.UI
	cfg     *Config
	name    string            // the machine's: {name}
	machine *stepStartMachine // its QMP socket
	http    *stepHTTP         // the HTTP server, if it runs
}

// Name implements step.Step.
func (s *stepBootCommand) Name() string { return "type boot command" }

// keyHoldTime is how long send-key holds each key down.
const keyHoldTime = 20 * time.Millisecond

// Run implements step.Step.
func (s *stepBootCommand) Run(ctx context.Context) error {
	m := s.machine.machine
	ctx, done := guard(ctx, m, &connection{})
	defer done()
	c := s.cfg
	cmd, err := bootcmd.Parse(c.BootCommand)
	if err != nil {
		return fmt.Errorf("boot_command: %w", err)
	}
	vals := map[string]string{"name": s.name, "vm_name": s.name}
	if h := s.http.Server; h != nil {
		vals["http_ip"] = httpIP
		vals["http_port"] = strconv.Itoa(h.Port)
		vals["http_url"] = "http://" + httpIP + ":" + strconv.Itoa(h.Port)
	}
	plan, err := cmd.Plan(vals)
	if err != nil {
		return fmt.Errorf("boot_command: %w (set http_directory or http_content to start the HTTP server)", err)
	}
	q, err := dialQMP(ctx, s.machine.qmp, 10*time.Second)
	if err != nil {
		return causeOf(ctx, err)
	}
	defer q.Close()
	if w := c.BootWait; w > 0 {
		s.ui.Say("waiting %s (boot_wait) before typing the boot command", w)
		if err := retry.Sleep(ctx, w); err != nil {
			return causeOf(ctx, err)
		}
	}
	if c.BootPrompt != "" {
		if err := waitForPrompt(ctx, m, c.BootPrompt, c.BootPromptWait); err != nil {
			return causeOf(ctx, err)
		}
		s.ui.Say("the console shows %q: typing", c.BootPrompt)
	}
	sent, err := bootcmd.Type(ctx, plan, &qmpKeyboard{q: q, holdTime: keyHoldTime}, bootcmd.TypeOptions{Interval: c.BootKeyInterval, Say: s.ui.Say})
	if err != nil {
		if cause := causeOf(ctx, nil); cause != nil {
			return cause
		}
		return fmt.Errorf("%w; the last lines of the serial console:\n%s", err, indent(m.ConsoleTail(consoleLines)))
	}
	s.ui.Say("typed the boot command (%d keys)", sent)
	return nil
}

// waitForPrompt waits until the machine's serial console shows prompt.
func waitForPrompt(ctx context.Context, m *vm.Machine, prompt string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for !strings.Contains(m.ConsoleTail(50), prompt) {
		if time.Now().After(deadline) {
			return fmt.Errorf("boot_prompt %q did not show on the serial console within boot_prompt_timeout (%s); its last lines:\n%s", prompt, wait, indent(m.ConsoleTail(consoleLines)))
		}
		if err := retry.Sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}
