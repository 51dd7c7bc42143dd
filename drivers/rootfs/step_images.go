package rootfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/output"
)

// stepImages makes the outputs from the generalized tree: the kernel and
// initrd for direct boot, the tar, the ext4 file system as a raw disk and
// a qcow2, and the checksum of the disk (of the tar when there is no disk).
// They are the artifact: its cleanup removes them if the build fails.
type stepImages struct {
	ui      *event.UI
	cfg     *Config
	out     *output.Dir
	build   string // the build's name, which names the outputs
	workDir string
	size    int64     // of the ext4 file system
	uuid    string    // of the ext4 file system
	epoch   time.Time // zero: no clamping
	tree    *stepDebootstrap

	// outputs, absolute ("" for what was not made)
	kernel, initrd string
	tar            string
	disk           string // the qcow2 when made, else the raw
	format         string // the disk's
	checksum       string // "sha256:<hex>"
}

// Name implements step.Step.
func (s *stepImages) Name() string { return "images" }

// MakesArtifact implements step.Artifact.
func (s *stepImages) MakesArtifact() bool { return true }

// Run implements step.Step.
func (s *stepImages) Run(ctx context.Context) error {
	tree := s.tree.tree
	// The kernel and initrd, for direct boot.
	kernel, initrd := findKernel(tree)
	if kernel == "" {
		s.ui.Say("no kernel in the tree: add linux-image-amd64 to packages to boot the image directly")
	} else {
		for _, c := range []struct {
			from, kind string
			into       *string
		}{{kernel, "kernel", &s.kernel}, {initrd, "initrd", &s.initrd}} {
			if c.from == "" {
				continue
			}
			tmp, err := s.begin(c.kind)
			if err != nil {
				return err
			}
			if err := output.CopyFile(filepath.Join(tree, c.from), tmp); err != nil {
				return fmt.Errorf("copying /%s out of the tree: %w", c.from, err)
			}
			if *c.into, err = s.done(c.kind); err != nil {
				return err
			}
		}
		s.ui.Say("kernel /%s and initrd /%s copied to %s for direct boot", kernel, initrd, s.out.Show(s.out.Path))
	}
	if s.wants("tar") {
		start := time.Now()
		tmp, err := s.begin("tar")
		if err != nil {
			return err
		}
		if err := s.writeTar(ctx, tmp); err != nil {
			return err
		}
		if s.tar, err = s.done("tar"); err != nil {
			return err
		}
		s.ui.Say("tar %s made in %s", s.out.Show(s.tar), time.Since(start).Round(100*time.Millisecond))
	}
	if s.wants("raw") || s.wants("qcow2") {
		if err := s.disks(ctx); err != nil {
			return err
		}
	}
	sumOf := s.disk
	if sumOf == "" {
		sumOf = s.tar
	}
	sum, err := qemuimg.SHA256(ctx, sumOf)
	if err != nil {
		return fmt.Errorf("checksumming %s: %w", s.out.Show(sumOf), err)
	}
	s.checksum = "sha256:" + sum
	return nil
}

// disks makes the ext4 file system as a raw disk, and converts it to
// qcow2 (the raw one is only a scratch file unless formats names it).
func (s *stepImages) disks(ctx context.Context) error {
	raw := filepath.Join(s.workDir, "disk.raw")
	if s.wants("raw") {
		var err error
		if raw, err = s.begin("raw"); err != nil {
			return err
		}
	}
	start := time.Now()
	u, _ := TreeUsage(ctx, s.tree.tree)
	s.ui.Say("making a %s ext4 file system (UUID %s) of %d files taking %s", qemuimg.FormatSize(s.size), s.uuid, u.Files, qemuimg.HumanSize(u.Bytes))
	err := MakeExt4(ctx, s.tree.tree, raw, Ext4Options{Size: s.size, Label: "root", UUID: s.uuid, Epoch: s.epoch, Output: s.ui.Lines("stderr")})
	if err != nil {
		return err
	}
	s.ui.Say("ext4 file system made in %s", time.Since(start).Round(100*time.Millisecond))
	s.disk, s.format = raw, "raw"
	if s.wants("raw") {
		if raw, err = s.done("raw"); err != nil {
			return err
		}
		s.disk = raw
	}
	if !s.wants("qcow2") {
		return nil
	}
	start = time.Now()
	tmp, err := s.begin("qcow2")
	if err != nil {
		return err
	}
	err = qemuimg.Convert(ctx, qemuimg.ConvertOptions{In: raw, InFormat: "raw", Out: tmp, Format: "qcow2", Compress: s.cfg.Compress,
		Progress: func(done, total int64) { s.ui.Progress("qcow2", done, total, "%") }})
	if err != nil {
		return err
	}
	final, err := s.done("qcow2")
	if err != nil {
		return err
	}
	if !s.wants("raw") {
		os.Remove(raw)
	}
	s.disk, s.format = final, "qcow2"
	s.ui.Say("qcow2 %s made in %s", s.out.Show(final), time.Since(start).Round(100*time.Millisecond))
	return nil
}

func (s *stepImages) wants(format string) bool { return slices.Contains(s.cfg.Formats, format) }

// begin returns the temporary name an output is written under until done
// moves it into place.
func (s *stepImages) begin(kind string) (string, error) {
	return s.out.Begin(outputName(s.build, kind))
}

// done moves an output into place and returns its path.
func (s *stepImages) done(kind string) (string, error) { return s.out.Done(outputName(s.build, kind)) }

func (s *stepImages) writeTar(ctx context.Context, p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	err = WriteTar(ctx, s.tree.tree, f, s.epoch, func(done, total int64) { s.ui.Progress("tar", done, total, "bytes") })
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p)
		return fmt.Errorf("making %s: %w", s.out.Show(p), err)
	}
	return nil
}

// Cleanup removes what the build wrote, when it failed.
func (s *stepImages) Cleanup(ctx context.Context, failed bool) error { return s.out.Cleanup(failed) }

// Leftovers implements step.Leaver.
func (s *stepImages) Leftovers() []string { return s.out.Leftovers() }
