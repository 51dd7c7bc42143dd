package rootfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
)

// stepLockCache takes the package cache (package_cache) for this build,
// waiting while another build holds it. Its cleanup lets it go.
type stepLockCache struct {
	ui        *event.UI
	cfg       *Config
	workspace string // resolves a relative package_cache

	// outputs
	dir string // the cache; "" when package_cache = "none"

	unlock func()
}

// Name implements step.Step.
func (s *stepLockCache) Name() string { return "lock package cache" }

// Run implements step.Step.
func (s *stepLockCache) Run(ctx context.Context) error {
	switch s.cfg.PackageCache {
	case "none":
		return nil
	case "":
		s.dir = DefaultPackageCache
	default:
		s.dir = s.cfg.PackageCache
		if !filepath.IsAbs(s.dir) {
			s.dir = filepath.Join(s.workspace, s.dir)
		}
	}
	for _, d := range []string{"debootstrap", "apt/partial"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
			return fmt.Errorf("package cache %s: %w", s.dir, err)
		}
	}
	f, err := os.OpenFile(filepath.Join(s.dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("package cache %s: %w", s.dir, err)
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return fmt.Errorf("locking the package cache %s: %w", s.dir, err)
		}
		if !said {
			s.ui.Say("waiting for the package cache %s, in use by another build", s.dir)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return context.Cause(ctx)
		case <-time.After(time.Second):
		}
	}
	s.unlock = func() { f.Close() }
	return nil
}

// Cleanup implements step.Cleaner.
func (s *stepLockCache) Cleanup(ctx context.Context, failed bool) error {
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
	return nil
}
