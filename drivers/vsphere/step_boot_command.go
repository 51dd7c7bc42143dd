package vsphere

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/engine/step"
)

// bootCommandStep waits boot_wait, then types boot_command on the VM's
// keyboard through USB scan codes (VirtualMachine.PutUsbScanCodes).
func (b *build) bootCommandStep() step.Step {
	return &step.Func{StepName: "type boot command", RunFunc: b.typeBootCommand}
}

// bootValues are the values of boot_command's placeholders.
func (b *build) bootValues() map[string]string {
	vals := map[string]string{"vm_name": b.name}
	if b.http != nil {
		vals["http_ip"] = b.http.ip
		vals["http_port"] = strconv.Itoa(b.http.port)
		vals["http_url"] = b.http.url()
	}
	return vals
}

func (b *build) typeBootCommand(ctx context.Context) error {
	actions, err := parseBootCommand(strings.Join(b.iso.BootCommand, ""))
	if err != nil {
		return fmt.Errorf("boot_command: %w", err)
	}
	plan, err := planBootCommand(actions, b.bootValues())
	if err != nil {
		return fmt.Errorf("boot_command: %w (set http_directory or http_content to start the HTTP server)", err)
	}
	if w := b.iso.BootWait; w > 0 {
		b.say("waiting %s (boot_wait) before typing the boot command", w)
		if err := sleep(ctx, w); err != nil {
			return err
		}
	}
	sent := 0
	for _, s := range plan {
		if s.Wait > 0 {
			if err := sleep(ctx, s.Wait); err != nil {
				return err
			}
			continue
		}
		b.say("typing %q", s.Text)
		batches := [][]keyEvent{s.Keys}
		if b.iso.BootKeyInterval > 0 {
			batches = nil
			for _, k := range s.Keys {
				batches = append(batches, []keyEvent{k})
			}
		}
		for i, keys := range batches {
			if i > 0 {
				if err := sleep(ctx, b.iso.BootKeyInterval); err != nil {
					return err
				}
			}
			n, err := b.vm.PutUsbScanCodes(ctx, types.UsbScanCodeSpec{KeyEvents: usbEvents(keys)})
			if err != nil {
				return ctxErr(ctx, fmt.Errorf("typing on %s's keyboard (PutUsbScanCodes): %s", b.vmPath, explain(err)))
			}
			if int(n) != len(keys) {
				return fmt.Errorf("typing on %s's keyboard: vSphere took %d of %d keys", b.vmPath, n, len(keys))
			}
			sent += len(keys)
		}
	}
	b.say("typed the boot command (%d keys)", sent)
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
