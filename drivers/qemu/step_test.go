package qemu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemutest"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/output"
)

// These tests build and run single steps alone, their inputs given as
// literals of the earlier steps they read: no machine is started.

// qcow2Disk makes an empty qcow2 disk of size bytes.
func qcow2Disk(t *testing.T, size string) string {
	t.Helper()
	qemutest.RequireQEMU(t)
	disk := filepath.Join(t.TempDir(), "base.qcow2")
	if out, err := exec.Command(qemuimg.Program, "create", "-f", "qcow2", disk, size).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	return disk
}

func TestInspectAloneRefusesToShrinkTheDisk(t *testing.T) {
	disk := qcow2Disk(t, "64M")
	ws := t.TempDir()
	out := output.NewSet(ws, "tiny", false).Dir("", "output_directory")
	cfg := &Config{Disk: disk, DiskSize: "32M", Accelerator: "tcg"}
	s := &stepInspect{ui: event.NewUI(nil, "tiny", Name), cfg: cfg, out: out}
	err := s.Run(context.Background())
	want := "disk_size 32M is smaller than the disk (64M): qemu() can grow a disk, not shrink it"
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}

func TestCreateOverlayAloneGrowsTheDiskAndCleansUp(t *testing.T) {
	disk := qcow2Disk(t, "64M")
	info, err := qemuimg.Inspect(context.Background(), disk)
	if err != nil {
		t.Fatal(err)
	}
	s := &stepCreateOverlay{
		workDir: t.TempDir(),
		disk:    &stepInspect{disk: disk, info: info, size: 128 << 20},
	}
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := qemuimg.Inspect(context.Background(), s.path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Format != "qcow2" || got.VirtualSize != 128<<20 {
		t.Errorf("overlay is %s of %d bytes, want qcow2 of %d", got.Format, got.VirtualSize, 128<<20)
	}
	if err := s.Cleanup(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.path); !os.IsNotExist(err) {
		t.Errorf("the overlay is still there after cleanup: %v", err)
	}
}

func TestConvertAndPlaceMakeTheDiskAndConvertRemovesItOnFailure(t *testing.T) {
	disk := qcow2Disk(t, "16M")
	ws := t.TempDir()
	out := output.NewSet(ws, "tiny", false).Dir("", "output_directory")
	s := &stepConvert{
		ui: event.NewUI(nil, "tiny", Name), cfg: &Config{Format: "raw"}, out: out, name: "tiny.raw",
		overlay: &stepCreateOverlay{path: disk},
	}
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(ws, "output", "tiny", "tiny.raw")
	if s.disk == final || filepath.Dir(s.disk) != filepath.Dir(final) {
		t.Errorf("the converted disk is %s, want a temporary name beside %s until it is placed", s.disk, final)
	}
	if _, err := os.Stat(final); !os.IsNotExist(err) {
		t.Errorf("the disk is in place before it was tested: %v", err)
	}
	place := &stepPlace{out: out, name: "tiny.raw", convert: s, kernel: &stepReadKernel{}}
	if err := place.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if place.disk != final {
		t.Errorf("disk is %s, want %s", place.disk, final)
	}
	if !strings.HasPrefix(place.checksum, "sha256:") || len(place.checksum) != len("sha256:")+64 {
		t.Errorf("checksum is %q, want sha256:<64 hex digits>", place.checksum)
	}
	if fi, err := os.Stat(final); err != nil || fi.Size() != 16<<20 {
		t.Fatalf("the raw disk: %v, %v", fi, err)
	}
	if err := s.Cleanup(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(final); !os.IsNotExist(err) {
		t.Errorf("the disk is still there after a failed build's cleanup: %v", err)
	}
}
