package rootfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/qemu/vm"
	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine"
)

// testBootTimeout bounds the test machine's boot, up to its SSH server's
// answer (TCG boots take minutes on a busy machine).
const testBootTimeout = 10 * time.Minute

// stepTestBoot is the machine the tests of an image with a kernel and a
// disk run on, after the images are made: the new disk booted under qemu
// (its kernel and initrd booted directly, as qemu() boots rootfs()
// disks) on a qcow2 overlay in the scratch directory, so nothing the
// tests do reaches the image. The tests log in as root with a key made
// for this machine, given to it as the systemd credential
// ssh.authorized_keys.root through SMBIOS, as qemu() gives the build's key,
// which systemd-tmpfiles writes into root's authorized_keys on the overlay:
// the image never holds it. An image without a kernel or a disk is tested in a chroot of the
// tree instead (chroot, as stepTestTree does). The cleanup closes the
// connection, stops qemu and removes the overlay.
type stepTestBoot struct {
	job     *engine.Job
	workDir string
	uuid    string // the file system's, for root=
	images  *stepImages
	chroot  *stepTestTree // when the image does not boot

	// outputs
	dir     string
	machine *vm.Machine
	comm    *ssh.Communicator
}

// boots reports whether the image is booted for its tests: it has a
// kernel and a disk.
func (s *stepTestBoot) boots() bool { return s.images.kernel != "" && s.images.disk != "" }

// Name implements step.Step.
func (s *stepTestBoot) Name() string {
	if !s.boots() {
		return s.chroot.Name()
	}
	return "boot the new disk"
}

// Run implements step.Step.
func (s *stepTestBoot) Run(ctx context.Context) error {
	if !s.boots() {
		return s.chroot.Run(ctx)
	}
	ui := s.job.UI
	s.dir = filepath.Join(s.workDir, "test-boot")
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	overlay := filepath.Join(s.dir, "overlay.qcow2")
	if err := qemuimg.CreateOverlay(ctx, s.images.disk, s.images.format, overlay, 0); err != nil {
		return err
	}
	key, err := ssh.NewKey("imgbuild-test-" + s.job.Name)
	if err != nil {
		return err
	}
	accel, err := vm.ChooseAccel("auto")
	if err != nil {
		return err
	}
	spec := &vm.Spec{
		Name: s.job.Name + "-test", Disk: overlay, Format: "qcow2",
		Kernel: s.images.kernel, Initrd: s.images.initrd, Append: bootAppend(s.uuid),
		Memory: 1024, CPUs: 1, Accel: accel.Name, Machine: "q35", GuestPort: 22,
		Credentials: map[string]string{"ssh.authorized_keys.root": key.AuthorizedKey()},
		Console:     vm.ConsolePath(s.dir),
	}
	if spec.HostPort, err = vm.FreePort(); err != nil {
		return fmt.Errorf("finding a free port on 127.0.0.1: %w", err)
	}
	if s.machine, err = vm.Start(ctx, spec); err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", spec.HostPort)
	ui.Say("qemu started for the tests (pid %d, %s): booting %s directly on an overlay of %s; SSH forwarded from %s", s.machine.PID, accel.Name, s.images.kernel, s.images.disk, addr)
	start := time.Now()
	hostKey, err := vm.WaitForHostKey(ctx, addr, "root", start.Add(testBootTimeout), func(waited time.Duration, last error) {
		if s.machine.Running() {
			ui.Say("still waiting for the test machine's SSH (%s): %v", waited.Round(time.Second), last)
		}
	})
	if err == nil && !s.machine.Running() {
		err = errors.New("qemu exited")
	}
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		how := "is still running"
		if !s.machine.Running() {
			how = s.machine.ExitStatus()
		}
		return fmt.Errorf("the test machine's SSH did not come up within %s (last attempt: %v); qemu %s. The image's tests run over SSH as root when it has a kernel: it needs an SSH server (openssh-server), systemd 252 or later, which installs the test key given as a credential, and a network (systemd-sysv in packages, so that network = \"dhcp\" configures systemd-networkd). The last lines of the serial console:\n  %s",
			testBootTimeout, err, how, strings.ReplaceAll(s.machine.ConsoleTail(15), "\n", "\n  "))
	}
	ui.Say("the test machine's SSH answered after %s", time.Since(start).Round(100*time.Millisecond))
	opts := ssh.Defaults()
	opts.Host, opts.Port, opts.Username, opts.Timeout = "127.0.0.1", spec.HostPort, "root", time.Minute
	comm, err := ssh.Connect(ctx, ssh.Config{Options: opts, HostKey: hostKey, Key: key, UI: ui})
	if err != nil {
		return fmt.Errorf("logging in to the test machine over SSH as root: %w (the key was given as the systemd credential ssh.authorized_keys.root)", err)
	}
	s.comm = comm
	return nil
}

// bootAppend is the kernel command line of the image's disk.
func bootAppend(uuid string) string {
	return "root=UUID=" + uuid + " ro console=tty0 console=ttyS0,115200n8"
}

// Communicator implements engine.Connection.
func (s *stepTestBoot) Communicator() engine.Communicator {
	if !s.boots() {
		return s.chroot.Communicator()
	}
	if s.comm == nil {
		return nil
	}
	return s.comm
}

// Cleanup implements step.Cleaner.
func (s *stepTestBoot) Cleanup(ctx context.Context, failed bool) error {
	if !s.boots() {
		return s.chroot.Cleanup(ctx, failed)
	}
	if s.comm != nil {
		s.comm.Close()
		s.comm = nil
	}
	if s.machine != nil {
		s.machine.Stop(10 * time.Second)
	}
	if s.dir == "" {
		return nil
	}
	return os.RemoveAll(s.dir)
}

// Leftovers implements step.Leaver.
func (s *stepTestBoot) Leftovers() []string {
	if !s.boots() {
		return s.chroot.Leftovers()
	}
	var out []string
	if s.machine != nil && s.machine.Running() {
		out = append(out, fmt.Sprintf("qemu process %d", s.machine.PID))
	}
	if s.dir != "" {
		out = append(out, "directory "+s.dir)
	}
	return out
}
