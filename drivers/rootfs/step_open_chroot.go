package rootfs

import (
	"context"

	"github.com/imgbuild/imgbuild/drivers/chroot"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
)

// stepOpenChroot lends the cached packages to the tree's apt and opens the
// chroot communicator on the tree (with a policy-rc.d that keeps services
// from starting, and this machine's resolv.conf lent to it). Its cleanup
// closes it, unless generalize did.
type stepOpenChroot struct {
	ui    *event.UI
	cfg   *Config
	tree  *stepDebootstrap
	cache *stepLockCache

	// outputs
	chrootComm
}

// Name implements step.Step.
func (s *stepOpenChroot) Name() string { return "open chroot" }

// Run implements step.Step.
func (s *stepOpenChroot) Run(ctx context.Context) error {
	opts := chroot.Options{Env: s.cfg.Env, PolicyRCD: true, ResolvConf: true}
	if s.cache.dir != "" {
		n, err := lendPackages(s.cache.dir, s.tree.tree)
		if err != nil {
			return err
		}
		if n > 0 {
			s.ui.Say("%d packages from the package cache put in apt's archive", n)
		}
	}
	c, err := chroot.New(s.tree.tree, opts)
	if err != nil {
		return err
	}
	s.comm = c
	return nil
}

// chrootComm is a step's chroot communicator, open after its Run: the
// step offers it to what runs on the tree (engine.Connection) and closes
// it once.
type chrootComm struct {
	comm *chroot.Comm
}

// Communicator implements engine.Connection.
func (c *chrootComm) Communicator() engine.Communicator {
	if c.comm == nil {
		return nil
	}
	return c.comm
}

// close closes the communicator, once.
func (c *chrootComm) close() error {
	if c.comm == nil {
		return nil
	}
	err := c.comm.Close()
	c.comm = nil
	return err
}

// Cleanup implements step.Cleaner.
func (s *stepOpenChroot) Cleanup(ctx context.Context, failed bool) error { return s.close() }

// Leftovers implements step.Leaver.
func (s *stepOpenChroot) Leftovers() []string {
	return []string{"policy-rc.d and the borrowed resolv.conf in " + s.tree.tree}
}
