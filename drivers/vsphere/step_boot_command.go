package vsphere

import (
	"context"
	"fmt"
	"strconv"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/drivers/bootcmd"
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
	vals := map[string]string{"name": s.env.name, "vm_name": s.env.name}
	if h := s.http.Server; h != nil {
		vals["http_ip"] = h.IP
		vals["http_port"] = strconv.Itoa(h.Port)
		vals["http_url"] = h.URL()
	}
	return vals
}

// Run implements step.Step.
func (s *stepBootCommand) Run(ctx context.Context) error {
	b := s.env
	cmd, err := bootcmd.Parse(b.iso.BootCommand)
	if err != nil {
		return fmt.Errorf("boot_command: %w", err)
	}
	plan, err := cmd.Plan(s.bootValues())
	if err != nil {
		return fmt.Errorf("boot_command: %w (set http_directory or http_content to start the HTTP server)", err)
	}
	if w := b.iso.BootWait; w > 0 {
		b.say("waiting %s (boot_wait) before typing the boot command", w)
		if err := retry.Sleep(ctx, w); err != nil {
			return err
		}
	}
	sent, err := bootcmd.Type(ctx, plan, &usbKeyboard{vm: s.vm}, bootcmd.TypeOptions{Interval: b.iso.BootKeyInterval, Say: b.say})
	if err != nil {
		return ctxErr(ctx, err)
	}
	b.say("typed the boot command (%d keys)", sent)
	return nil
}

// usbKeyboard types on a VM's keyboard with PutUsbScanCodes.
type usbKeyboard struct{ vm *vmHandle }

// Press implements bootcmd.Keyboard.
func (k *usbKeyboard) Press(ctx context.Context, keys []bootcmd.Press) error {
	n, err := k.vm.vm.PutUsbScanCodes(ctx, types.UsbScanCodeSpec{KeyEvents: usbEvents(keys)})
	if err != nil {
		return fmt.Errorf("typing on %s's keyboard (PutUsbScanCodes): %s", k.vm.path, explain(err))
	}
	if int(n) != len(keys) {
		return fmt.Errorf("typing on %s's keyboard: vSphere took %d of %d keys", k.vm.path, n, len(keys))
	}
	return nil
}
