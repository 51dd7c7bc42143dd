package qemu

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/qemu/vm"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/output"
)

// stepInspect checks the inputs before the machine starts: the disk's
// format and size (and disk_size, which may only grow it), that kernel and
// initrd are files, that OVMF is there for UEFI, and which accelerator
// works here.
type stepInspect struct {
	ui  *event.UI
	cfg *Config
	out *output.Dir // its Workspace resolves relative paths

	// outputs
	disk, kernel, initrd string // the inputs, absolute
	info                 *qemuimg.Info
	size                 int64 // the size to grow the disk to; 0 keeps it
	accel                vm.Accel
}

// Name implements step.Step.
func (s *stepInspect) Name() string { return "inspect disk" }

// Run implements step.Step.
func (s *stepInspect) Run(ctx context.Context) error {
	c := s.cfg
	ws := s.out.Workspace
	s.disk, s.kernel, s.initrd = abs(ws, c.Disk), abs(ws, c.Kernel), abs(ws, c.Initrd)
	if c.installing() {
		return s.inspectInstall()
	}
	if c.Disk == "" {
		return errors.New("disk is empty: the build that should make it produced no disk (a rootfs() with formats = [\"tar\"] only?)")
	}
	info, err := qemuimg.Inspect(ctx, s.disk)
	if err != nil {
		return err
	}
	s.info = info
	for _, f := range []struct{ kw, path string }{{"kernel", s.kernel}, {"initrd", s.initrd}} {
		if f.path == "" {
			continue
		}
		fi, err := os.Stat(f.path)
		if err != nil {
			return fmt.Errorf("%s %s does not exist: check the path, or that the build making it ran", f.kw, f.path)
		}
		if fi.IsDir() {
			return fmt.Errorf("%s %s is a directory, not a file", f.kw, f.path)
		}
	}
	if c.Kernel == "" && c.uefi() {
		if _, _, err := vm.OVMFVars(); err != nil {
			return err
		}
	}
	if c.DiskSize != "" {
		size, err := qemuimg.ParseSize(c.DiskSize)
		if err != nil {
			return fmt.Errorf("disk_size: %w", err)
		}
		if size < info.VirtualSize {
			return fmt.Errorf("disk_size %s is smaller than the disk (%s): qemu() can grow a disk, not shrink it", c.DiskSize, qemuimg.HumanSize(info.VirtualSize))
		}
		s.size = size
	}
	accel, err := vm.ChooseAccel(c.Accelerator)
	if err != nil {
		return err
	}
	s.accel = accel
	s.ui.Say("disk %s: %s, %s; accelerator %s: %s", s.out.Show(s.disk), info.Format, qemuimg.HumanSize(info.VirtualSize), accel.Name, accel.Reason)
	return nil
}

// inspectInstall checks what installing from an ISO needs: the blank
// disk's size, OVMF for UEFI, the HTTP directory, the accelerator.
func (s *stepInspect) inspectInstall() error {
	c := s.cfg
	size, err := qemuimg.ParseSize(cmp.Or(c.DiskSize, defaultInstallDisk))
	if err != nil {
		return fmt.Errorf("disk_size: %w", err)
	}
	s.size = size
	if c.uefi() {
		if _, _, err := vm.OVMFVars(); err != nil {
			return err
		}
	}
	if d := abs(s.out.Workspace, c.HTTPDirectory); d != "" {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return fmt.Errorf("http_directory %s does not exist or is not a directory: create it, or set http_content instead", d)
		}
	}
	accel, err := vm.ChooseAccel(c.Accelerator)
	if err != nil {
		return err
	}
	s.accel = accel
	s.ui.Say("installing onto a blank disk of %s; accelerator %s: %s", qemuimg.HumanSize(size), accel.Name, accel.Reason)
	return nil
}
