package vsphere

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/engine/retry"
)

// stepBootCommand waits boot_wait, then types boot_command on the VM's
// keyboard through USB scan codes (VirtualMachine.PutUsbScanCodes).
type stepBootCommand struct {
	env  *buildEnv
	vm   *vmHandle
	http *stepHTTP // the HTTP server, if it ran
}

// Name implements step.Step.
func (s *stepBootCommand) Name() string { return "type boot command" }

// bootValues are the values of boot_command's placeholders.
func (s *stepBootCommand) bootValues() map[string]string {
	vals := map[string]string{"vm_name": s.env.name}
	if h := s.http.server; h != nil {
		vals["http_ip"] = h.ip
		vals["http_port"] = strconv.Itoa(h.port)
		vals["http_url"] = h.url()
	}
	return vals
}

// Run implements step.Step.
func (s *stepBootCommand) Run(ctx context.Context) error {
	b := s.env
	actions, err := parseBootCommand(strings.Join(b.iso.BootCommand, ""))
	if err != nil {
		return fmt.Errorf("boot_command: %w", err)
	}
	plan, err := planBootCommand(actions, s.bootValues())
	if err != nil {
		return fmt.Errorf("boot_command: %w (set http_directory or http_content to start the HTTP server)", err)
	}
	if w := b.iso.BootWait; w > 0 {
		b.say("waiting %s (boot_wait) before typing the boot command", w)
		if err := retry.Sleep(ctx, w); err != nil {
			return err
		}
	}
	vm := s.vm
	sent := 0
	for _, bs := range plan {
		if bs.Wait > 0 {
			if err := retry.Sleep(ctx, bs.Wait); err != nil {
				return err
			}
			continue
		}
		b.say("typing %q", bs.Text)
		batches := [][]keyEvent{bs.Keys}
		if b.iso.BootKeyInterval > 0 {
			batches = nil
			for _, k := range bs.Keys {
				batches = append(batches, []keyEvent{k})
			}
		}
		for i, keys := range batches {
			if i > 0 {
				if err := retry.Sleep(ctx, b.iso.BootKeyInterval); err != nil {
					return err
				}
			}
			n, err := vm.vm.PutUsbScanCodes(ctx, types.UsbScanCodeSpec{KeyEvents: usbEvents(keys)})
			if err != nil {
				return ctxErr(ctx, fmt.Errorf("typing on %s's keyboard (PutUsbScanCodes): %s", vm.path, explain(err)))
			}
			if int(n) != len(keys) {
				return fmt.Errorf("typing on %s's keyboard: vSphere took %d of %d keys", vm.path, n, len(keys))
			}
			sent += len(keys)
		}
	}
	b.say("typed the boot command (%d keys)", sent)
	return nil
}
