package vm

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/imgbuild/imgbuild/engine/panics"
)

// Program is the QEMU system emulator run for machines.
var Program = "qemu-system-x86_64"

// Spec is everything a machine is started with.
type Spec struct {
	Name     string // shown in ps: imgbuild-<name>
	Disk     string // the overlay to boot
	Format   string // its format
	Kernel   string
	Initrd   string
	Append   string
	Firmware string // "bios" or "uefi"
	UEFIVars string // a writable copy of OVMF's variables
	Memory   int
	CPUs     int
	Accel    string // "kvm" or "tcg"
	Machine  string
	// HostPort on 127.0.0.1 is forwarded to GuestPort.
	HostPort, GuestPort int
	// Credentials are systemd credentials given through SMBIOS type 11.
	Credentials map[string]string
	// SMBIOSSerial, if set, is the system serial number (SMBIOS type 1):
	// cloud-init's NoCloud reads its seed's address from it.
	SMBIOSSerial string
	Console      string // the file the serial console is written to
	// DiskInterface is how Disk is attached: virtio, virtio-scsi, ide or
	// sata; "" is virtio. DiskCache and DiskDiscard are QEMU's cache and
	// discard modes ("" is writeback and unmap).
	DiskInterface, DiskCache, DiskDiscard string
	// NetDevice is the network card; "" is virtio-net.
	NetDevice string
	// CPUModel is -cpu; "" is host under KVM and max under TCG.
	CPUModel string
	// CDROMs are ISO images attached as CD drives, in order; with BootCD
	// the machine boots the first one once, then its disk (an installer
	// reboots into what it installed).
	CDROMs []string
	BootCD bool
	// QMP, if set, is a Unix socket where QEMU serves its machine protocol
	// (to type boot_command with send-key).
	QMP string
	// Display shows the screen in a window (-display gtk); else none.
	Display bool
	Extra   []string
}

// OVMFCode is OVMF's firmware, from Debian's ovmf package.
var OVMFCode = []string{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE.fd"}

// OVMFVars returns the variable store template matching the OVMF firmware
// found, or an error saying what to install.
func OVMFVars() (code, vars string, err error) {
	for _, c := range OVMFCode {
		v := strings.Replace(c, "CODE", "VARS", 1)
		if _, err := os.Stat(c); err == nil {
			if _, err := os.Stat(v); err == nil {
				return c, v, nil
			}
		}
	}
	return "", "", fmt.Errorf("firmware = \"uefi\" (or \"efi\") needs OVMF (%s and its VARS file), which is not installed: apt-get install ovmf", strings.Join(OVMFCode, " or "))
}

// escapeOpt doubles commas, as QEMU's option parser wants inside a value.
func escapeOpt(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// multiThreadedTCG tells whether the machine emulates its CPUs on as many
// host threads (TCG with more than one CPU).
func (s *Spec) multiThreadedTCG() bool { return s.Accel != "kvm" && s.CPUs > 1 }

// machineOpt is -machine's value. The accelerator goes in it unless
// -accel names it (multi-threaded TCG): QEMU refuses both at once.
func (s *Spec) machineOpt() string {
	if s.multiThreadedTCG() {
		return s.Machine
	}
	return s.Machine + ",accel=" + s.Accel
}

// Args returns the qemu-system-x86_64 command line for spec (without the
// program's name).
func (s *Spec) Args() ([]string, error) {
	args := []string{
		"-name", "imgbuild-" + s.Name + ",process=imgbuild-" + s.Name,
		"-nodefaults", "-no-user-config",
		"-machine", s.machineOpt(),
		"-m", strconv.Itoa(s.Memory),
		"-smp", strconv.Itoa(s.CPUs),
		"-serial", "file:" + s.Console,
	}
	if s.Display {
		args = append(args, "-display", "gtk", "-device", "VGA")
	} else {
		args = append(args, "-display", "none")
		if len(s.CDROMs) > 0 {
			// Installers draw on a screen, seen or not.
			args = append(args, "-device", "VGA")
		}
	}
	disk, err := s.diskArgs()
	if err != nil {
		return nil, err
	}
	args = append(args, disk...)
	netdev, ok := netDevices[cmp.Or(s.NetDevice, "virtio-net")]
	if !ok {
		return nil, fmt.Errorf("net_device %q is not one QEMU has here", s.NetDevice)
	}
	args = append(args,
		"-netdev", fmt.Sprintf("user,id=net0,hostfwd=tcp:127.0.0.1:%d-:%d", s.HostPort, s.GuestPort),
		"-device", netdev+",netdev=net0",
		"-device", "virtio-rng-pci",
	)
	for i, cd := range s.CDROMs {
		// IDE indexes 2 and up: the second IDE bus of pc, AHCI ports 2
		// and up of q35 (0 is an ide or sata disk's).
		args = append(args, "-drive", fmt.Sprintf("if=ide,index=%d,media=cdrom,readonly=on,format=raw,file=%s", i+2, escapeOpt(cd)))
	}
	if s.BootCD {
		args = append(args, "-boot", "once=d")
	}
	if s.QMP != "" {
		args = append(args, "-qmp", "unix:"+escapeOpt(s.QMP)+",server=on,wait=off")
	}
	switch {
	case s.CPUModel != "":
		args = append(args, "-cpu", s.CPUModel)
	case s.Accel == "kvm":
		args = append(args, "-cpu", "host")
	default:
		args = append(args, "-cpu", "max")
	}
	if s.multiThreadedTCG() {
		args = append(args, "-accel", "tcg,thread=multi")
	}
	names := make([]string, 0, len(s.Credentials))
	for k := range s.Credentials {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := s.Credentials[k]
		if strings.ContainsAny(k, "=,\n") || strings.Contains(v, "\n") {
			return nil, fmt.Errorf("credential %q: names and values must be one line without = in the name", k)
		}
		args = append(args, "-smbios", "type=11,value="+escapeOpt("io.systemd.credential:"+k+"="+v))
	}
	if s.SMBIOSSerial != "" {
		args = append(args, "-smbios", "type=1,serial="+escapeOpt(s.SMBIOSSerial))
	}
	if s.Kernel != "" {
		args = append(args, "-kernel", s.Kernel, "-append", s.Append)
		if s.Initrd != "" {
			args = append(args, "-initrd", s.Initrd)
		}
	} else if s.Firmware == "uefi" || s.Firmware == "efi" {
		code, _, err := OVMFVars()
		if err != nil {
			return nil, err
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+escapeOpt(code),
			"-drive", "if=pflash,format=raw,unit=1,file="+escapeOpt(s.UEFIVars))
	}
	return append(args, s.Extra...), nil
}

// netDevices are the network cards net_device names, as QEMU's devices.
var netDevices = map[string]string{
	"virtio-net": "virtio-net-pci", "e1000": "e1000", "e1000e": "e1000e",
	"rtl8139": "rtl8139", "vmxnet3": "vmxnet3", "i82559er": "i82559er",
}

// diskArgs attaches the disk as DiskInterface says. On q35, ide and sata
// are both the machine's AHCI controller.
func (s *Spec) diskArgs() ([]string, error) {
	drive := "file=" + escapeOpt(s.Disk) + ",format=" + s.Format +
		",discard=" + cmp.Or(s.DiskDiscard, "unmap") + ",cache=" + cmp.Or(s.DiskCache, "writeback")
	switch cmp.Or(s.DiskInterface, "virtio") {
	case "virtio":
		return []string{"-drive", "if=virtio," + drive}, nil
	case "virtio-scsi":
		return []string{"-device", "virtio-scsi-pci,id=scsi0", "-drive", "if=none,id=disk0," + drive,
			"-device", "scsi-hd,bus=scsi0.0,drive=disk0"}, nil
	case "ide", "sata":
		return []string{"-drive", "if=ide,index=0,media=disk," + drive}, nil
	}
	return nil, fmt.Errorf("disk_interface %q is not virtio, virtio-scsi, ide or sata", s.DiskInterface)
}

// Machine is a running QEMU process.
type Machine struct {
	Spec *Spec
	cmd  *exec.Cmd
	// PID is QEMU's process id.
	PID    int
	exited chan struct{}

	mu      sync.Mutex
	waitErr error
	stderr  bytes.Buffer
}

// Start starts QEMU for spec. It dies with imgbuild. ctx carries the
// build's panic handler (panics.Go) to the goroutine waiting for QEMU; it
// does not stop QEMU.
func Start(ctx context.Context, spec *Spec) (*Machine, error) {
	args, err := spec.Args()
	if err != nil {
		return nil, err
	}
	m := &Machine{Spec: spec, exited: make(chan struct{})}
	cmd := exec.Command(Program, args...)
	cmd.Stdout = &lockedWriter{m: m}
	cmd.Stderr = &lockedWriter{m: m}
	cmd.SysProcAttr = processGroup()
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("%s is not installed: apt-get install qemu-system-x86", Program)
		}
		return nil, fmt.Errorf("starting %s: %w", Program, err)
	}
	m.cmd, m.PID = cmd, cmd.Process.Pid
	panics.Go(ctx, func() {
		err := cmd.Wait()
		m.mu.Lock()
		m.waitErr = err
		m.mu.Unlock()
		close(m.exited)
	})
	return m, nil
}

type lockedWriter struct{ m *Machine }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	if w.m.stderr.Len() < 64<<10 {
		w.m.stderr.Write(p)
	}
	return len(p), nil
}

// Exited is closed when QEMU has exited.
func (m *Machine) Exited() <-chan struct{} { return m.exited }

// Running reports whether QEMU still runs.
func (m *Machine) Running() bool {
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// ExitStatus describes how QEMU ended ("exit status 1", "killed by signal
// 9") and what it wrote.
func (m *Machine) ExitStatus() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	status := "exited normally"
	if m.waitErr != nil {
		var ee *exec.ExitError
		if errors.As(m.waitErr, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				status = fmt.Sprintf("was killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
			} else {
				status = "exited with status " + strconv.Itoa(ee.ExitCode())
			}
		} else {
			status = m.waitErr.Error()
		}
	}
	if out := strings.TrimSpace(m.stderr.String()); out != "" {
		status += ": " + LastLines(out, 5)
	}
	return status
}

// Stop stops QEMU: SIGTERM (QEMU then exits cleanly, its disk flushed),
// then SIGKILL after grace. It returns once QEMU has exited.
func (m *Machine) Stop(grace time.Duration) {
	if !m.Running() {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
		return
	case <-time.After(grace):
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
}

// Wait waits up to d for QEMU to exit by itself and reports whether it
// did.
func (m *Machine) Wait(ctx context.Context, d time.Duration) bool {
	select {
	case <-m.exited:
		return true
	case <-time.After(d):
		return false
	case <-ctx.Done():
		return false
	}
}

// ConsoleTail returns the last n lines of the serial console, "" when it
// wrote nothing.
func (m *Machine) ConsoleTail(n int) string {
	return consoleTail(m.Spec.Console, n)
}

func consoleTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	const window = 64 << 10
	off := max(fi.Size()-window, 0)
	buf := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && len(buf) == 0 {
		return ""
	}
	// Console output has carriage returns and escape sequences.
	text := strings.ReplaceAll(string(buf), "\r", "")
	text = stripEscapes(text)
	return LastLines(strings.TrimRight(text, "\n "), n)
}

// stripEscapes removes ANSI escape sequences (colours, cursor moves) that
// systemd and firmware write to the console.
func stripEscapes(s string) string {
	if !strings.Contains(s, "\x1b") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != 0x1b {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		i++
	}
	return b.String()
}

// LastLines is the last n lines of s, each cut at 240 bytes.
func LastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 240 {
			lines[i] = l[:240] + "…"
		}
	}
	return strings.Join(lines, "\n")
}

// FreePort returns a TCP port free on 127.0.0.1 right now. QEMU may still
// lose it to another program; Build then tries another.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ConsolePath is where a build's serial console goes.
func ConsolePath(workDir string) string { return filepath.Join(workDir, "console.log") }
