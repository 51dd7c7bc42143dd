package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/qemu/vm"
	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/output"
)

// stepStartMachine makes the build's SSH key and starts QEMU on the
// overlay, with the key given to the machine as an SMBIOS credential (and a
// NoCloud seed with cloud_init) and the machine's SSH port forwarded from a
// free port of 127.0.0.1. Its cleanup closes the connection and stops the
// machine if it still runs.
type stepStartMachine struct {
	job     *engine.Job
	dir     string // its scratch files: the console, UEFI variables
	cfg     *Config
	out     *output.Dir
	disk    *stepInspect       // the kernel, initrd and accelerator
	overlay *stepCreateOverlay // the disk it boots
	keys    *stepMakeKey       // the build's key
	iso     *stepFetchISO      // the installer ISO, if any
	cd      *stepMakeCD        // the second CD, if any
	conn    *connection        // closed before the machine stops

	// outputs
	key     *ssh.Key // the build's key, which the machine lets in
	seed    *noCloud
	machine *vm.Machine
	port    int    // the forwarded port on 127.0.0.1
	qmp     string // QEMU's QMP socket, for boot_command
	qmpDir  string
}

// portTries is how many forwarded ports are tried when another program
// takes the free port first.
const portTries = 3

// Name implements step.Step.
func (s *stepStartMachine) Name() string { return "start machine" }

// Run implements step.Step.
func (s *stepStartMachine) Run(ctx context.Context) error {
	c, job := s.cfg, s.job
	key := s.keys.key
	s.key = key
	spec := &vm.Spec{
		Name: job.Name, Disk: s.overlay.path, Format: "qcow2",
		Kernel: s.disk.kernel, Initrd: s.disk.initrd, Firmware: c.Firmware,
		Memory: c.Memory, CPUs: c.CPUs, Accel: s.disk.accel.Name, Machine: c.Machine,
		CPUModel: c.CPUModel, DiskInterface: c.DiskInterface, DiskCache: c.DiskCache, DiskDiscard: c.DiskDiscard,
		NetDevice: c.NetDevice, Display: !c.Headless,
		GuestPort:   c.SSH.Port,
		Credentials: map[string]string{"ssh.authorized_keys." + c.SSH.Username: key.AuthorizedKey()},
		Console:     vm.ConsolePath(s.dir),
		Extra:       c.QemuArgs,
	}
	if s.iso != nil {
		spec.CDROMs, spec.BootCD = []string{s.iso.path}, true
	}
	if s.cd != nil {
		spec.CDROMs = append(spec.CDROMs, s.cd.path)
	}
	if len(c.BootCommand) > 0 {
		// A short directory: a Unix socket's path has at most 107 bytes.
		dir, err := os.MkdirTemp("", "imgbuild-qmp-")
		if err != nil {
			return err
		}
		s.qmpDir, s.qmp = dir, filepath.Join(dir, "qmp.sock")
		spec.QMP = s.qmp
	}
	if s.disk.kernel != "" {
		spec.Append = c.cmdline()
	} else if c.uefi() {
		_, vars, err := vm.OVMFVars()
		if err != nil {
			return err
		}
		spec.UEFIVars = filepath.Join(s.dir, "OVMF_VARS.fd")
		if err := output.CopyFile(vars, spec.UEFIVars); err != nil {
			return err
		}
	}
	if c.CloudInit {
		seed, err := startNoCloud(ctx, "imgbuild-"+job.Name, job.Name, key.AuthorizedKey())
		if err != nil {
			return err
		}
		s.seed = seed
		spec.SMBIOSSerial = seed.Serial()
	}
	for try := 1; ; try++ {
		port, err := vm.FreePort()
		if err != nil {
			return fmt.Errorf("finding a free port on 127.0.0.1: %w", err)
		}
		spec.HostPort = port
		m, err := vm.Start(ctx, spec)
		if err != nil {
			return err
		}
		s.machine = m
		// QEMU fails at once when it cannot listen on the port.
		if m.Wait(ctx, 500*time.Millisecond) {
			status := m.ExitStatus()
			if strings.Contains(status, "hostfwd") || strings.Contains(status, "host forwarding") {
				if try < portTries {
					continue
				}
			}
			return fmt.Errorf("qemu %s at once: %s", status, m.ConsoleTail(consoleLines))
		}
		s.port = port
		break
	}
	how := "booting " + filepath.Base(s.disk.disk) + " through the firmware (" + c.Firmware + ")"
	switch {
	case s.iso != nil:
		how = "installing from " + s.out.Show(s.iso.path) + " onto a blank disk of " + qemuimg.HumanSize(s.disk.size) + " (firmware " + c.Firmware + ")"
	case s.disk.kernel != "":
		how = "booting kernel " + s.out.Show(s.disk.kernel) + " directly"
	}
	job.UI.Say("qemu started (pid %d, %s, %d MiB, %d CPU): %s; SSH forwarded from 127.0.0.1:%d to the machine's port %d",
		s.machine.PID, s.disk.accel.Name, c.Memory, c.CPUs, how, s.port, c.SSH.Port)
	return nil
}

// Cleanup stops the machine if it still runs, and the seed's server.
func (s *stepStartMachine) Cleanup(ctx context.Context, failed bool) error {
	if s.seed != nil {
		s.seed.Close()
	}
	if s.qmpDir != "" {
		defer os.RemoveAll(s.qmpDir)
	}
	if s.machine == nil {
		return nil
	}
	s.conn.close()
	if s.machine.Running() {
		s.machine.Stop(10 * time.Second)
	}
	return nil
}

// Leftovers implements step.Leaver.
func (s *stepStartMachine) Leftovers() []string {
	if s.machine == nil || !s.machine.Running() {
		return nil
	}
	return []string{fmt.Sprintf("qemu process %d", s.machine.PID)}
}
