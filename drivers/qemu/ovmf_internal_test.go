package qemu

import (
	"context"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/qemu/vm"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/output"
)

// TestMissingOVMFNamesItsPackage inspects an EFI install on a machine
// without OVMF (its files looked for where nothing is).
func TestMissingOVMFNamesItsPackage(t *testing.T) {
	saved := vm.OVMFCode
	defer func() { vm.OVMFCode = saved }()
	vm.OVMFCode = []string{t.TempDir() + "/OVMF_CODE_4M.fd"}
	cfg := &Config{Firmware: "efi", Install: Install{ISOURL: "tiny.iso", ISOChecksum: "none"}, Accelerator: "tcg"}
	s := &stepInspect{ui: event.NewUI(event.NewBus(), "tiny", "qemu"), cfg: cfg, out: &output.Dir{Workspace: t.TempDir()}}
	err := s.Run(context.Background())
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`firmware = "uefi" (or "efi") needs OVMF (` + vm.OVMFCode[0] + ` and its VARS file), which is not installed: apt-get install ovmf`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
