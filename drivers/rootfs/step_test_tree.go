package rootfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/imgbuild/imgbuild/drivers/chroot"
)

// stepTestTree is the machine the build's tests run on: a chroot of the
// finished (generalized) tree, on an overlay of it so that nothing a test
// does reaches the image. The tree is the overlay's read-only lower layer;
// what the tests write goes to an upper layer in the scratch directory.
// The cleanup closes the chroot, unmounts the overlay and removes the
// layers.
type stepTestTree struct {
	cfg     *Config
	workDir string
	tree    *stepDebootstrap

	// outputs
	dir     string // the layers and the mount point
	merged  string
	mounted bool
	chrootComm
}

// Name implements step.Step.
func (s *stepTestTree) Name() string { return "chroot of the tree" }

// Run implements step.Step.
func (s *stepTestTree) Run(ctx context.Context) error {
	s.dir = filepath.Join(s.workDir, "test")
	upper, work := filepath.Join(s.dir, "upper"), filepath.Join(s.dir, "work")
	s.merged = filepath.Join(s.dir, "root")
	for _, d := range []string{upper, work, s.merged} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", s.tree.tree, upper, work)
	if err := unix.Mount("overlay", s.merged, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mounting an overlay of the tree %s for the tests: %w (the kernel's overlay file system is needed)", s.tree.tree, err)
	}
	s.mounted = true
	// Services installed by a test do not start, as in the build; the
	// tree's own resolv.conf stays what the image has.
	c, err := chroot.New(s.merged, chroot.Options{Env: s.cfg.Env, PolicyRCD: true})
	if err != nil {
		return err
	}
	s.comm = c
	return nil
}

// Cleanup implements step.Cleaner.
func (s *stepTestTree) Cleanup(ctx context.Context, failed bool) error {
	errs := []error{s.close()}
	if s.mounted {
		if err := unix.Unmount(s.merged, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return errors.Join(append(errs, fmt.Errorf("unmounting the tests' overlay %s: %w", s.merged, err))...)
		}
		s.mounted = false
	}
	if s.dir != "" {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	return errors.Join(errs...)
}

// Leftovers implements step.Leaver.
func (s *stepTestTree) Leftovers() []string {
	if !s.mounted {
		return nil
	}
	return []string{"the tests' overlay of the tree, mounted at " + s.merged}
}
