package qemu

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
)

// stepCreateOverlay makes the copy-on-write overlay the machine boots, in
// the build's scratch directory, so that the input disk is never written;
// installing from an ISO, the blank disk installed onto.
// Its cleanup removes the overlay.
type stepCreateOverlay struct {
	workDir string
	disk    *stepInspect // the disk, its format and the size to grow it to

	// outputs
	path string // the overlay, qcow2
}

// Name implements step.Step.
func (s *stepCreateOverlay) Name() string { return "create overlay" }

// Run implements step.Step.
func (s *stepCreateOverlay) Run(ctx context.Context) error {
	s.path = filepath.Join(s.workDir, "overlay.qcow2")
	if s.disk.info == nil {
		// Installing: a blank disk.
		return qemuimg.CreateBlank(ctx, s.path, s.disk.size)
	}
	return qemuimg.CreateOverlay(ctx, s.disk.disk, s.disk.info.Format, s.path, s.disk.size)
}

// Cleanup implements step.Cleaner.
func (s *stepCreateOverlay) Cleanup(ctx context.Context, failed bool) error {
	if s.path == "" {
		return nil
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Leftovers implements step.Leaver.
func (s *stepCreateOverlay) Leftovers() []string { return []string{"file " + s.path} }
