// Package rootfs is the rootfs() builder: it installs a Debian root file
// system with debootstrap, provisions it through the chroot communicator
// (drivers/chroot), and makes images of it without loop devices or mounts:
// a reproducible tar, and an ext4 file system (mkfs.ext4 -d) as a raw disk
// and a qcow2, plus the kernel and initrd found in it for direct boot.
//
// A build goes: check the mirror and suite → debootstrap (in private
// namespaces, its downloads kept in a package cache; or the same tree
// copied from a checkpoint, see drivers/rootfs/checkpoint) → configure (hostname,
// fstab, DHCP) → provisioners in the chroot → generalize (machine-id
// emptied, SSH host keys removed and regenerated on first boot,
// policy-rc.d and the borrowed resolv.conf gone) → with tests = [...], the
// tests in a chroot of the finished tree, on an overlay of it that goes
// with them (a failed test makes no image) → images → checksum.
//
// It needs root, and says so before anything starts. Like every driver it
// knows nothing of Starlark: it gets a decoded Config in an engine.Job.
package rootfs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/drivers/chroot"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/rootfs/checkpoint"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/step"
)

// Name is the builder's name in descriptions.
const Name = "rootfs"

// Def declares the rootfs() builder.
func Def() *engine.BuilderDef {
	return &engine.BuilderDef{
		Schema: schema.Of(Name,
			"Installs a Debian root file system with debootstrap, runs the provisioners inside it through a chroot (private namespaces: nothing stays mounted or running), and makes a reproducible tar and an ext4 disk (raw, qcow2) of it without loop devices, with the kernel and initrd for direct boot. Needs root.",
			&Config{}),
		Outputs: []engine.Output{
			{Name: "disk", Doc: "The disk image (the qcow2 when made, else the raw), relative to the workspace when inside it; \"\" when only a tar was made."},
			{Name: "format", Doc: "The disk image's format: \"qcow2\" or \"raw\"."},
			{Name: "kernel", Doc: "The kernel found in the tree, copied beside the disk, for direct boot (qemu(kernel = ...)); \"\" when there is none."},
			{Name: "initrd", Doc: "The initrd matching the kernel; \"\" when there is none."},
			{Name: "append", Doc: "A kernel command line that boots the disk directly: root=UUID=... ro console=ttyS0."},
			{Name: "checksum", Doc: "\"sha256:<hex>\" of the disk image (of the tar when there is no disk)."},
			{Name: "tar", Doc: "The tar archive, when made."},
			{Name: "directory", Doc: "The output directory."},
		},
		Build:     Build,
		PlanNotes: planNotes,
		// Tests run on the new disk booted under qemu when the image has
		// a kernel, else in a chroot of the finished tree (on overlays).
		CheckTests: func(any) error { return nil },
	}
}

// Register adds rootfs() to r.
func Register(r *engine.Registry) { r.AddBuilder(Def()) }

// Build runs one rootfs build. Without root, or without debootstrap,
// mkfs.ext4 or qemu-img when they are needed, it fails before anything
// starts. It makes the steps (one per file, step_*.go) and wires each to
// the earlier steps whose outputs it reads.
func Build(ctx context.Context, job *engine.Job) (*engine.Artifact, error) {
	cfg, ok := job.Config.(*Config)
	if !ok {
		return nil, fmt.Errorf("rootfs: config is %T, want *rootfs.Config", job.Config)
	}
	if err := chroot.NeedRoot("rootfs()"); err != nil {
		return nil, err
	}
	if err := checkTools(cfg); err != nil {
		return nil, err
	}
	size, err := qemuimg.ParseSize(cfg.Size)
	if err != nil {
		return nil, fmt.Errorf("size: %w", err)
	}
	out := job.OutputSet().Dir(cfg.OutputDirectory, "output_directory")
	epoch, err := sourceDateEpoch(cfg)
	if err != nil {
		return nil, err
	}
	uuid := makeUUID(job.Name, epoch)

	mirror := &stepCheckMirror{ui: job.UI, cfg: cfg}
	cache := &stepLockCache{ui: job.UI, cfg: cfg, workspace: out.Workspace}
	tree := &stepDebootstrap{ui: job.UI, cfg: cfg, workDir: job.WorkDir, mirror: mirror, cache: cache}
	if cfg.Checkpoint {
		if tree.checkpoints, err = checkpoint.Open(); err != nil {
			return nil, fmt.Errorf("checkpoint: %w (or set checkpoint = False)", err)
		}
	}
	chrooted := &stepOpenChroot{ui: job.UI, cfg: cfg, tree: tree, cache: cache}
	images := &stepImages{ui: job.UI, cfg: cfg, out: out, build: job.Name, workDir: job.WorkDir, size: size, uuid: uuid, epoch: epoch, tree: tree}
	steps := []step.Step{
		&stepCheckOutput{cfg: cfg, out: out, build: job.Name},
		mirror,
		cache,
		tree,
		chrooted,
		&stepConfigure{ui: job.UI, cfg: cfg, build: job.Name, uuid: uuid, tree: tree, chroot: chrooted},
		&engine.ProvisionStep{Job: job, Over: chrooted},
		&stepGeneralize{ui: job.UI, epoch: epoch, tree: tree, chroot: chrooted, cache: cache},
	}
	chrootOf := &stepTestTree{cfg: cfg, workDir: job.WorkDir, tree: tree}
	switch {
	case !job.HasTests():
		steps = append(steps, images)
	case images.wants("raw") || images.wants("qcow2"):
		// The new disk is tested once made: booted under qemu when the
		// image has a kernel, else in a chroot of the tree. A failed test
		// removes the images.
		boot := &stepTestBoot{job: job, workDir: job.WorkDir, uuid: uuid, images: images, chroot: chrootOf}
		steps = append(steps, images, &engine.TestStep{Job: job, Machine: []step.Step{boot}, Over: boot})
	default:
		// The finished tree is tested before any image is made of it: a
		// failed test leaves no output.
		steps = append(steps, &engine.TestStep{Job: job, Machine: []step.Step{chrootOf}, Over: chrootOf}, images)
	}
	if err := job.Steps.Run(ctx, steps...); err != nil {
		return nil, err
	}
	return artifact(out, uuid, images), nil
}

// sourceDateEpoch is the time every modification time is clamped to:
// source_date_epoch, else $SOURCE_DATE_EPOCH; zero for none.
func sourceDateEpoch(cfg *Config) (time.Time, error) {
	if cfg.SourceDateEpoch > 0 {
		return time.Unix(cfg.SourceDateEpoch, 0).UTC(), nil
	}
	sde := os.Getenv("SOURCE_DATE_EPOCH")
	if sde == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(sde, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", sde)
	}
	return time.Unix(n, 0).UTC(), nil
}

func checkTools(cfg *Config) error {
	need := map[string]string{"debootstrap": "debootstrap"}
	for _, f := range cfg.Formats {
		if f == "raw" || f == "qcow2" {
			need["mkfs.ext4"] = "e2fsprogs"
		}
		if f == "qcow2" {
			need[qemuimg.Program] = "qemu-utils"
		}
	}
	var missing, pkgs []string
	for prog, pkg := range need {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, prog)
			pkgs = append(pkgs, pkg)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		sort.Strings(pkgs)
		verb := "is"
		if len(missing) > 1 {
			verb = "are"
		}
		return fmt.Errorf("rootfs() needs %s, which %s not installed: apt-get install %s", joinAnd(missing), verb, strings.Join(pkgs, " "))
	}
	return nil
}

// joinAnd joins words as a sentence does: "a", "a and b", "a, b and c".
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// makeUUID is the file system's UUID: derived from the build's name and
// SOURCE_DATE_EPOCH when that is set (same inputs, same image), else
// random.
func makeUUID(build string, epoch time.Time) string {
	var u [16]byte
	if !epoch.IsZero() {
		sum := sha256.Sum256([]byte("imgbuild rootfs " + build + " " + strconv.FormatInt(epoch.Unix(), 10)))
		copy(u[:], sum[:16])
	} else {
		_, _ = rand.Read(u[:])
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// outputName is the name of a build's output file of a kind ("kernel",
// "initrd", or a format).
func outputName(build, kind string) string {
	switch kind {
	case "kernel":
		return "vmlinuz"
	case "initrd":
		return "initrd.img"
	}
	return build + "." + kind
}

// artifact describes what the images step made.
func artifact(out *output.Dir, uuid string, img *stepImages) *engine.Artifact {
	id := out.Show(img.disk)
	if id == "" {
		id = out.Show(img.tar)
	}
	cmdline := ""
	if img.disk != "" {
		cmdline = bootAppend(uuid)
	}
	return &engine.Artifact{
		ID:       id,
		Platform: "local",
		Files:    out.Files(),
		Fields: map[string]any{
			"disk":      out.Show(img.disk),
			"format":    img.format,
			"kernel":    out.Show(img.kernel),
			"initrd":    out.Show(img.initrd),
			"append":    cmdline,
			"checksum":  img.checksum,
			"tar":       out.Show(img.tar),
			"directory": out.Show(out.Path),
		},
	}
}
