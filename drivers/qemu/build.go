package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/step"
)

// consoleLines is how many lines of the serial console an error quotes.
const consoleLines = 15

// build is one qemu build's state, shared by its steps.
type build struct {
	job *engine.Job
	cfg *Config
	out *output.Dir

	disk, kernel, initrd string // inputs, absolute
	info                 *qemuimg.Info
	size                 int64
	overlay              string
	accel                Accel
	key                  *ssh.Key
	seed                 *noCloud
	machine              *Machine
	port                 int

	mu   sync.Mutex
	comm *ssh.Communicator

	outDisk, outKernel, outInitrd string
	checksum                      string
}

// Build runs one qemu build: inspect the disk, boot an overlay of it,
// wait for SSH, provision, read back the kernel, shut down, convert.
func Build(ctx context.Context, job *engine.Job) (*engine.Artifact, error) {
	cfg, ok := job.Config.(*Config)
	if !ok {
		return nil, fmt.Errorf("qemu: config is %T, want *qemu.Config", job.Config)
	}
	if err := checkTools(); err != nil {
		return nil, err
	}
	ws := job.Workspace
	if ws == "" {
		ws = "."
	}
	out, err := output.New(ws, cfg.OutputDirectory, job.Name)
	if err != nil {
		return nil, err
	}
	b := &build{job: job, cfg: cfg, out: out}
	steps := []step.Step{
		&step.Func{StepName: "check output directory", RunFunc: b.checkOutput},
		&step.Func{StepName: "inspect disk", RunFunc: b.inspect},
		&step.Func{StepName: "create overlay", RunFunc: b.createOverlay, CleanFunc: b.removeOverlay,
			LeftFunc: func() []string { return []string{"file " + b.overlay} }},
		&step.Func{StepName: "start machine", RunFunc: b.start, CleanFunc: b.stop, LeftFunc: b.machineLeft},
		&step.Func{StepName: "wait for SSH", RunFunc: b.waitForSSH, CleanFunc: b.disconnect},
		&step.Func{StepName: "provision", RunFunc: b.provision},
	}
	if cfg.Kernel != "" {
		steps = append(steps, &step.Func{StepName: "read kernel", RunFunc: b.readKernel, CleanFunc: b.removeOutputs, Artifact: true, LeftFunc: b.out.Leftovers})
	}
	steps = append(steps,
		&step.Func{StepName: "shut down", RunFunc: b.shutdown},
		&step.Func{StepName: "convert", RunFunc: b.convert, CleanFunc: b.removeOutputs, Artifact: true, LeftFunc: b.out.Leftovers},
	)
	if err := job.Steps.Run(ctx, steps...); err != nil {
		return nil, err
	}
	return b.artifact(), nil
}

// checkTools says what to install when QEMU's programs are missing, before
// anything starts.
func checkTools() error {
	var missing, pkgs []string
	for _, t := range []struct{ prog, pkg string }{{Program, "qemu-system-x86"}, {qemuimg.Program, "qemu-utils"}} {
		if _, err := exec.LookPath(t.prog); err != nil {
			missing = append(missing, t.prog)
			pkgs = append(pkgs, t.pkg)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("qemu() needs %s, which is not installed: apt-get install %s", missing[0], pkgs[0])
	}
	return fmt.Errorf("qemu() needs %s, which are not installed: apt-get install %s", strings.Join(missing, " and "), strings.Join(pkgs, " "))
}

func (b *build) extension() string {
	if b.cfg.Format == "raw" {
		return "raw"
	}
	return b.cfg.Format
}

func (b *build) diskName() string { return b.job.Name + "." + b.extension() }

func (b *build) checkOutput(ctx context.Context) error {
	names := []string{b.diskName()}
	if b.cfg.Kernel != "" {
		names = append(names, "vmlinuz", "initrd.img")
	}
	return b.out.Check("output_directory", b.cfg.Force, names...)
}

// abs makes a path from the description absolute (relative ones are the
// workspace's, as outputs of other builds are written).
func (b *build) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(b.out.Workspace, p)
}

func (b *build) inspect(ctx context.Context) error {
	b.disk, b.kernel, b.initrd = b.abs(b.cfg.Disk), b.abs(b.cfg.Kernel), b.abs(b.cfg.Initrd)
	if b.cfg.Disk == "" {
		return errors.New("disk is empty: the build that should make it produced no disk (a rootfs() with formats = [\"tar\"] only?)")
	}
	info, err := qemuimg.Inspect(ctx, b.disk)
	if err != nil {
		return err
	}
	b.info = info
	for _, f := range []struct{ kw, path string }{{"kernel", b.kernel}, {"initrd", b.initrd}} {
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
	if b.cfg.Kernel == "" && b.cfg.Firmware == "uefi" {
		if _, _, err := OVMFVars(); err != nil {
			return err
		}
	}
	if b.cfg.DiskSize != "" {
		size, err := qemuimg.ParseSize(b.cfg.DiskSize)
		if err != nil {
			return fmt.Errorf("disk_size: %w", err)
		}
		if size < info.VirtualSize {
			return fmt.Errorf("disk_size %s is smaller than the disk (%s): qemu() can grow a disk, not shrink it", b.cfg.DiskSize, qemuimg.HumanSize(info.VirtualSize))
		}
		b.size = size
	}
	accel, err := ChooseAccel(b.cfg.Accelerator)
	if err != nil {
		return err
	}
	b.accel = accel
	b.job.UI.Say("disk %s: %s, %s; accelerator %s: %s", b.out.Show(b.disk), info.Format, qemuimg.HumanSize(info.VirtualSize), accel.Name, accel.Reason)
	return nil
}

func (b *build) createOverlay(ctx context.Context) error {
	b.overlay = filepath.Join(b.job.WorkDir, "overlay.qcow2")
	return qemuimg.CreateOverlay(ctx, b.disk, b.info.Format, b.overlay, b.size)
}

func (b *build) removeOverlay(ctx context.Context, failed bool) error {
	if b.overlay == "" {
		return nil
	}
	if err := os.Remove(b.overlay); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// portTries is how many forwarded ports are tried when another program
// takes the free port first.
const portTries = 3

func (b *build) start(ctx context.Context) error {
	key, err := ssh.NewKey("imgbuild-" + b.job.Name)
	if err != nil {
		return err
	}
	b.key = key
	spec := &MachineSpec{
		Name: b.job.Name, Disk: b.overlay, Format: "qcow2",
		Kernel: b.kernel, Initrd: b.initrd, Firmware: b.cfg.Firmware,
		Memory: b.cfg.Memory, CPUs: b.cfg.CPUs, Accel: b.accel.Name, Machine: b.cfg.Machine,
		GuestPort:   b.cfg.SSH.Port,
		Credentials: map[string]string{"ssh.authorized_keys." + b.cfg.SSH.Username: key.AuthorizedKey()},
		Console:     consolePath(b.job.WorkDir),
		Extra:       b.cfg.QemuArgs,
	}
	if b.kernel != "" {
		spec.Append = b.cfg.cmdline()
	} else if b.cfg.Firmware == "uefi" {
		_, vars, err := OVMFVars()
		if err != nil {
			return err
		}
		spec.UEFIVars = filepath.Join(b.job.WorkDir, "OVMF_VARS.fd")
		if err := output.CopyFile(vars, spec.UEFIVars); err != nil {
			return err
		}
	}
	if b.cfg.CloudInit {
		seed, err := startNoCloud("imgbuild-"+b.job.Name, b.job.Name, key.AuthorizedKey())
		if err != nil {
			return err
		}
		b.seed = seed
		spec.SMBIOSSerial = seed.Serial()
	}
	for try := 1; ; try++ {
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("finding a free port on 127.0.0.1: %w", err)
		}
		spec.HostPort = port
		m, err := Start(spec)
		if err != nil {
			return err
		}
		b.machine = m
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
		b.port = port
		break
	}
	how := "booting " + filepath.Base(b.disk) + " through the firmware (" + b.cfg.Firmware + ")"
	if b.kernel != "" {
		how = "booting kernel " + b.out.Show(b.kernel) + " directly"
	}
	b.job.UI.Say("qemu started (pid %d, %s, %d MiB, %d CPU): %s; SSH forwarded from 127.0.0.1:%d to the machine's port %d",
		b.machine.PID, b.accel.Name, b.cfg.Memory, b.cfg.CPUs, how, b.port, b.cfg.SSH.Port)
	return nil
}

// stop stops the machine if it still runs, and the seed's server.
func (b *build) stop(ctx context.Context, failed bool) error {
	if b.seed != nil {
		b.seed.Close()
	}
	if b.machine == nil {
		return nil
	}
	b.closeComm()
	if b.machine.Running() {
		b.machine.Stop(10 * time.Second)
	}
	return nil
}

func (b *build) machineLeft() []string {
	if b.machine == nil || !b.machine.Running() {
		return nil
	}
	return []string{fmt.Sprintf("qemu process %d", b.machine.PID)}
}

// guard returns a context that is cancelled, with the reason, when the
// machine stops by itself, and closes the SSH connection then, so that
// nothing waits on a machine that is gone.
func (b *build) guard(ctx context.Context) (context.Context, func()) {
	gctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		select {
		case <-b.machine.Exited():
			cancel(b.deathError())
			b.closeComm()
		case <-done:
		}
	}()
	return gctx, func() {
		close(done)
		cancel(nil)
	}
}

// errMachineStopped marks the error of a machine that stopped by itself.
var errMachineStopped = errors.New("the machine stopped")

func (b *build) deathError() error {
	return fmt.Errorf("%w: qemu %s; the last lines of the serial console:\n%s", errMachineStopped, b.machine.ExitStatus(), indent(b.machine.ConsoleTail(consoleLines)))
}

func indent(s string) string {
	if s == "" {
		return "  (nothing: add console=ttyS0 to append to see the kernel's messages)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// causeOf returns the machine's death when that is why ctx ended, else
// err.
func causeOf(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && errors.Is(cause, errMachineStopped) {
		return cause
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
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

func (b *build) waitForSSH(ctx context.Context) error {
	ctx, done := b.guard(ctx)
	defer done()
	if d := b.cfg.BootWait; d > 0 {
		b.job.UI.Say("waiting %s before connecting (boot_wait)", d)
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", b.port)
	start := time.Now()
	deadline := start.Add(b.cfg.SSH.Timeout)
	b.job.UI.Say("waiting up to %s for SSH on %s", b.cfg.SSH.Timeout, addr)
	var hostKey gossh.PublicKey
	lastSaid := start
	// A short wait for the banner while the machine boots, longer when it
	// keeps timing out (a slow machine that does answer).
	wait, timeouts := 2*time.Second, 0
	for {
		k, err := probeHostKey(ctx, addr, b.cfg.SSH.Username, wait)
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
				b.cfg.SSH.Timeout, addr, b.cfg.SSH.Port, err, indent(b.machine.ConsoleTail(consoleLines)), b.cfg.SSH.Port)
		}
		if time.Since(lastSaid) > 30*time.Second {
			b.job.UI.Say("still waiting for SSH (%s): %v", time.Since(start).Round(time.Second), err)
			lastSaid = time.Now()
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return causeOf(ctx, err)
		}
	}
	b.job.UI.Say("SSH answered after %s (host key %s)", time.Since(start).Round(100*time.Millisecond), gossh.FingerprintSHA256(hostKey))
	opts := b.cfg.SSH
	opts.Host, opts.Port = "127.0.0.1", b.port
	if remaining := time.Until(deadline); remaining > 30*time.Second {
		opts.Timeout = remaining
	} else {
		opts.Timeout = 30 * time.Second
	}
	comm, err := ssh.Connect(ctx, ssh.Config{Options: opts, HostKey: hostKey, Key: b.key, UI: b.job.UI})
	if err != nil {
		if cause := causeOf(ctx, nil); cause != nil {
			return cause
		}
		return fmt.Errorf("logging in over SSH: %w. The machine was given the build's key as an SMBIOS credential (systemd 252 or later installs it for root) %s; the last lines of the serial console:\n%s",
			err, b.keyHint(), indent(b.machine.ConsoleTail(consoleLines)))
	}
	b.mu.Lock()
	b.comm = comm
	b.mu.Unlock()
	return nil
}

func (b *build) keyHint() string {
	if b.cfg.CloudInit {
		return "and a cloud-init NoCloud seed"
	}
	return "(set cloud_init = True if the image installs keys with cloud-init instead)"
}

func (b *build) closeComm() {
	b.mu.Lock()
	c := b.comm
	b.comm = nil
	b.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

func (b *build) communicator() *ssh.Communicator {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.comm
}

func (b *build) disconnect(ctx context.Context, failed bool) error {
	b.closeComm()
	return nil
}

func (b *build) provision(ctx context.Context) error {
	ctx, done := b.guard(ctx)
	defer done()
	comm := b.communicator()
	if comm == nil {
		return causeOf(ctx, errors.New("no SSH connection to the machine"))
	}
	if err := b.job.Provision(ctx, comm); err != nil {
		return b.explain(ctx, err)
	}
	return nil
}

// explain returns the machine's death when that is why a step failed.
// A lost connection may be noticed before QEMU's exit is: it waits a
// moment for the exit then.
func (b *build) explain(ctx context.Context, err error) error {
	if errors.Is(err, engine.ErrDisconnected) {
		select {
		case <-b.machine.Exited():
		case <-time.After(3 * time.Second):
		}
	}
	if !b.machine.Running() {
		return b.deathError()
	}
	return causeOf(ctx, err)
}

// readKernel copies the kernel and initrd the image now holds (/vmlinuz
// and /initrd.img, as Debian links them) to the output directory, so that
// they match its modules even if provisioning upgraded the kernel. An image
// without them keeps the pair it was booted with.
func (b *build) readKernel(ctx context.Context) error {
	ctx, done := b.guard(ctx)
	defer done()
	comm := b.communicator()
	type pair struct{ guest, input, name, tmp string }
	files := []*pair{{guest: "/vmlinuz", input: b.kernel, name: "vmlinuz"}}
	if b.initrd != "" {
		files = append(files, &pair{guest: "/initrd.img", input: b.initrd, name: "initrd.img"})
	}
	from := "read back from the machine (" + files[0].guest
	if len(files) > 1 {
		from += " and " + files[1].guest
	}
	from += ")"
	var failed error
	for _, f := range files {
		tmp, err := b.out.Begin(f.name)
		if err != nil {
			return err
		}
		f.tmp = tmp
		if failed == nil {
			failed = download(ctx, comm, f.guest, tmp)
		}
	}
	if ctx.Err() != nil {
		return causeOf(ctx, context.Cause(ctx))
	}
	if failed != nil {
		from = "the ones it was booted with (the machine has no " + files[0].guest + ")"
		for _, f := range files {
			if err := output.CopyFile(f.input, f.tmp); err != nil {
				return fmt.Errorf("copying %s: %w", f.input, err)
			}
		}
	}
	for _, f := range files {
		final, err := b.out.Done(f.name)
		if err != nil {
			return err
		}
		if f.name == "vmlinuz" {
			b.outKernel = final
		} else {
			b.outInitrd = final
		}
	}
	b.job.UI.Say("kernel and initrd for direct boot: %s", from)
	return nil
}

func download(ctx context.Context, comm engine.Communicator, src, dst string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	err = comm.Download(ctx, src, f, engine.Transfer{})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// shutdown powers the machine off with shutdown_command, and stops it by
// force if it has not within shutdown_timeout.
func (b *build) shutdown(ctx context.Context) error {
	start := time.Now()
	if comm := b.communicator(); comm != nil {
		b.forgetKey(ctx, comm)
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if status, err := comm.Run(sctx, &engine.Command{Command: "sync"}); err != nil || status != 0 {
			b.job.UI.Warn("sync before shutting down failed (status %d, %v)", status, err)
		}
		cancel()
		if cmd := b.cfg.ShutdownCommand; cmd != "" {
			b.job.UI.Say("shutting down: %s", cmd)
			var out strings.Builder
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			status, err := comm.Run(cctx, &engine.Command{Command: cmd, Stdout: &out, Stderr: &out})
			cancel()
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if err == nil && status != 0 {
				b.job.UI.Warn("shutdown_command %q exited with status %d: %s", cmd, status, strings.TrimSpace(out.String()))
			}
		}
		b.closeComm()
	}
	if b.cfg.ShutdownCommand == "" {
		b.job.UI.Say("stopping the machine (shutdown_command is empty)")
		b.machine.Stop(10 * time.Second)
		return nil
	}
	if b.machine.Wait(ctx, b.cfg.ShutdownTimeout) {
		b.job.UI.Say("the machine powered off in %s", time.Since(start).Round(100*time.Millisecond))
		return nil
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	b.job.UI.Warn("the machine did not power off within shutdown_timeout (%s) after %q: stopping it by force (its disks were synced first); the last lines of the serial console:\n%s",
		b.cfg.ShutdownTimeout, b.cfg.ShutdownCommand, indent(b.machine.ConsoleTail(5)))
	b.machine.Stop(10 * time.Second)
	return nil
}

// forgetKey removes the build's key from the SSH user's authorized_keys,
// and the file itself if that empties it: the key is of no use once the
// build is over (its private half was never written anywhere), and a file
// left behind would keep systemd from installing the next machine's key.
func (b *build) forgetKey(ctx context.Context, comm engine.Communicator) {
	fields := strings.Fields(b.key.AuthorizedKey())
	if len(fields) < 2 {
		return
	}
	script := `f=~/.ssh/authorized_keys; [ -f "$f" ] || exit 0; ` +
		`grep -vF '` + fields[1] + `' "$f" > "$f.imgbuild" || true; ` +
		`if [ -s "$f.imgbuild" ]; then cat "$f.imgbuild" > "$f"; else rm -f "$f"; fi; rm -f "$f.imgbuild"`
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out strings.Builder
	if status, err := comm.Run(cctx, &engine.Command{Command: script, Stdout: &out, Stderr: &out}); err != nil || status != 0 {
		b.job.UI.Warn("could not remove the build's SSH key from %s's authorized_keys (status %d, %v): %s", b.cfg.SSH.Username, status, err, strings.TrimSpace(out.String()))
		return
	}
	b.job.UI.Say("removed the build's SSH key from %s's authorized_keys", b.cfg.SSH.Username)
}

func (b *build) convert(ctx context.Context) error {
	tmp, err := b.out.Begin(b.diskName())
	if err != nil {
		return err
	}
	start := time.Now()
	err = qemuimg.Convert(ctx, qemuimg.ConvertOptions{
		In: b.overlay, InFormat: "qcow2", Out: tmp, Format: b.cfg.Format, Compress: b.cfg.Compress,
		Progress: func(done, total int64) { b.job.UI.Progress("convert", done, total, "%") },
	})
	if err != nil {
		return err
	}
	final, err := b.out.Done(b.diskName())
	if err != nil {
		return err
	}
	b.outDisk = final
	sum, err := qemuimg.SHA256(ctx, final)
	if err != nil {
		return err
	}
	b.checksum = "sha256:" + sum
	fi, _ := os.Stat(final)
	compressed := ""
	if b.cfg.Compress {
		compressed = ", compressed"
	}
	b.job.UI.Say("%s made in %s (%s%s)", b.out.Show(final), time.Since(start).Round(100*time.Millisecond), qemuimg.HumanSize(fi.Size()), compressed)
	return nil
}

func (b *build) removeOutputs(ctx context.Context, failed bool) error {
	return b.out.Cleanup(failed)
}

func (b *build) artifact() *engine.Artifact {
	cmdline := ""
	if b.kernel != "" {
		cmdline = b.cfg.cmdline()
	}
	return &engine.Artifact{
		ID:       b.out.Show(b.outDisk),
		Platform: "local",
		Files:    b.out.Files(),
		Fields: map[string]any{
			"disk":      b.out.Show(b.outDisk),
			"format":    b.cfg.Format,
			"kernel":    b.out.Show(b.outKernel),
			"initrd":    b.out.Show(b.outInitrd),
			"append":    cmdline,
			"checksum":  b.checksum,
			"directory": b.out.Show(b.out.Path),
		},
	}
}
