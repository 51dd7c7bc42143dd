package qemu

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/qemu/vm"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/step"
)

// consoleLines is how many lines of the serial console an error quotes.
const consoleLines = 15

// Build runs one qemu build: inspect the disk, boot an overlay of it,
// wait for SSH, provision, read back the kernel, shut down, convert, test
// the new disk on a machine of its own (booted on an overlay of it), and
// only then place the outputs. It makes the steps (one per file,
// step_*.go) and wires each to the earlier steps whose outputs it reads.
func Build(ctx context.Context, job *engine.Job) (*engine.Artifact, error) {
	cfg, ok := job.Config.(*Config)
	if !ok {
		return nil, fmt.Errorf("qemu: config is %T, want *qemu.Config", job.Config)
	}
	if err := checkTools(); err != nil {
		return nil, err
	}
	out := job.OutputSet().Dir(cfg.OutputDirectory, "output_directory")
	disk := diskName(job.Name, cfg)
	conn := &connection{}
	inspect := &stepInspect{ui: job.UI, cfg: cfg, out: out}
	overlay := &stepCreateOverlay{workDir: job.WorkDir, disk: inspect}
	keys := &stepMakeKey{name: job.Name}
	machine := &stepStartMachine{job: job, dir: job.WorkDir, cfg: cfg, out: out, disk: inspect, overlay: overlay, keys: keys, conn: conn}
	kernel := &stepReadKernel{ui: job.UI, out: out, disk: inspect, machine: machine, conn: conn}
	convert := &stepConvert{ui: job.UI, cfg: cfg, out: out, name: disk, overlay: overlay}
	place := &stepPlace{out: out, name: disk, convert: convert, kernel: kernel}
	http := &stepHTTP{ui: job.UI, cfg: cfg, out: out, keys: keys}
	steps := []step.Step{&stepCheckOutput{cfg: cfg, out: out, disk: disk}, inspect}
	if cfg.installing() {
		machine.iso = &stepFetchISO{ui: job.UI, cfg: cfg, out: out}
		steps = append(steps, machine.iso)
	}
	steps = append(steps, overlay, keys)
	if cfg.makeCD() {
		machine.cd = &stepMakeCD{ui: job.UI, cfg: cfg, out: out, workDir: job.WorkDir, keys: keys}
		steps = append(steps, machine.cd)
	}
	if cfg.serveHTTP() {
		steps = append(steps, http)
	}
	steps = append(steps, machine)
	if len(cfg.BootCommand) > 0 {
		steps = append(steps, &stepBootCommand{ui: job.UI, cfg: cfg, name: job.Name, machine: machine, http: http})
	}
	steps = append(steps,
		&stepWaitForSSH{ui: job.UI, cfg: cfg, machine: machine, conn: conn},
		&stepProvision{job: job, machine: machine, conn: conn},
	)
	if cfg.Kernel != "" {
		steps = append(steps, kernel)
	}
	steps = append(steps, &stepShutdown{ui: job.UI, cfg: cfg, machine: machine, conn: conn}, convert)
	if job.HasTests() {
		steps = append(steps, testStep(job, cfg, out, inspect, convert, kernel))
	}
	steps = append(steps, place)
	if err := job.Steps.Run(ctx, steps...); err != nil {
		return nil, err
	}
	return artifact(cfg, out, inspect, place), nil
}

// testStep boots the new disk as a fresh machine, on an overlay of its
// own with the build's key given again, for the build's tests; the
// machine and its overlay are removed once they are over.
func testStep(job *engine.Job, cfg *Config, out *output.Dir, inspect *stepInspect, convert *stepConvert, kernel *stepReadKernel) *engine.TestStep {
	dir := filepath.Join(job.WorkDir, "test")
	disk := &stepTestDisk{dir: dir, inspect: inspect, convert: convert, kernel: kernel}
	overlay := &stepCreateOverlay{workDir: dir, disk: &disk.disk}
	conn := &connection{}
	keys := &stepMakeKey{name: job.Name}
	machine := &stepStartMachine{job: job, dir: dir, cfg: cfg, out: out, disk: &disk.disk, overlay: overlay, keys: keys, conn: conn}
	return &engine.TestStep{Job: job, Over: conn, Machine: []step.Step{
		disk, overlay, keys, machine,
		&stepWaitForSSH{ui: job.UI, cfg: cfg, machine: machine, conn: conn},
	}}
}

// checkTools says what to install when QEMU's programs are missing, before
// anything starts.
func checkTools() error {
	var missing, pkgs []string
	for _, t := range []struct{ prog, pkg string }{{vm.Program, "qemu-system-x86"}, {qemuimg.Program, "qemu-utils"}} {
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

// diskName is the output disk's file name: vm_name, else the build's name
// with the format as extension.
func diskName(build string, cfg *Config) string {
	if cfg.VMName != "" {
		return cfg.VMName
	}
	return build + "." + cfg.Format
}

// abs makes a path from the description absolute (relative ones are the
// workspace's, as outputs of other builds are written).
func abs(workspace, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(workspace, p)
}

// artifact is the converted disk, with the kernel and initrd read back
// when the machine booted one directly.
func artifact(cfg *Config, out *output.Dir, disk *stepInspect, place *stepPlace) *engine.Artifact {
	cmdline := ""
	if disk.kernel != "" {
		cmdline = cfg.cmdline()
	}
	return &engine.Artifact{
		ID:       out.Show(place.disk),
		Platform: "local",
		Files:    out.Files(),
		Fields: map[string]any{
			"disk":      out.Show(place.disk),
			"format":    cfg.Format,
			"kernel":    out.Show(place.kernelFile),
			"initrd":    out.Show(place.initrdFile),
			"append":    cmdline,
			"checksum":  place.checksum,
			"directory": out.Show(out.Path),
		},
	}
}
