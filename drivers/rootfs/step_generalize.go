package rootfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
)

// stepGeneralize makes the tree an image, once the provisioners are done:
// what identifies one machine goes (machine-id emptied, SSH host keys
// removed and made again on first boot), and so do imgbuild's policy-rc.d,
// the borrowed resolv.conf and apt's downloads (kept in the package cache);
// with a SOURCE_DATE_EPOCH, modification times are clamped to it.
type stepGeneralize struct {
	ui     *event.UI
	epoch  time.Time // zero: no clamping
	tree   *stepDebootstrap
	chroot *stepOpenChroot // closed first
	cache  *stepLockCache  // takes apt's downloads
}

// sshKeysUnit makes the SSH host keys the image was made without on its
// first boot, before the SSH server starts.
const sshKeysUnit = `# Written by imgbuild: the image was made without SSH host keys, so that
# every machine made from it has its own.
[Unit]
Description=Generate the SSH host keys of this machine
Before=ssh.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
`

// Name implements step.Step.
func (s *stepGeneralize) Name() string { return "generalize" }

// Run implements step.Step.
func (s *stepGeneralize) Run(ctx context.Context) error {
	tree := s.tree.tree
	if err := s.chroot.close(); err != nil {
		return err
	}
	if n, err := keepPackages(s.cache.dir, tree); err != nil {
		return err
	} else if n > 0 {
		s.ui.Say("%d packages apt downloaded kept in the package cache %s", n, s.cache.dir)
	}
	if p := filepath.Join(tree, "usr/sbin/policy-rc.d"); inTree(tree, "usr/sbin/policy-rc.d") {
		if data, _ := os.ReadFile(p); strings.Contains(string(data), "Written by imgbuild") {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	var done []string
	if fi, err := os.Lstat(filepath.Join(tree, "etc/machine-id")); err == nil && fi.Mode().IsRegular() {
		if err := os.Truncate(filepath.Join(tree, "etc/machine-id"), 0); err != nil {
			return err
		}
		done = append(done, "machine-id emptied")
	}
	if fi, err := os.Lstat(filepath.Join(tree, "var/lib/dbus/machine-id")); err == nil && fi.Mode().IsRegular() {
		p := filepath.Join(tree, "var/lib/dbus/machine-id")
		if err := os.Remove(p); err != nil {
			return err
		}
		if err := os.Symlink("/etc/machine-id", p); err != nil {
			return err
		}
	}
	keys, _ := filepath.Glob(filepath.Join(tree, "etc/ssh/ssh_host_*"))
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	if len(keys) > 0 {
		done = append(done, fmt.Sprintf("%d SSH host key files removed", len(keys)))
	}
	if inTree(tree, "usr/sbin/sshd") && (inTree(tree, "usr/lib/systemd/system/ssh.service") || inTree(tree, "lib/systemd/system/ssh.service")) {
		unit := "etc/systemd/system/imgbuild-ssh-host-keys.service"
		if err := writeInTree(tree, unit, sshKeysUnit, 0o644); err != nil {
			return err
		}
		wants := filepath.Join(tree, "etc/systemd/system/ssh.service.wants")
		if err := os.MkdirAll(wants, 0o755); err != nil {
			return err
		}
		link := filepath.Join(wants, "imgbuild-ssh-host-keys.service")
		os.Remove(link)
		if err := os.Symlink("/"+unit, link); err != nil {
			return err
		}
		done = append(done, "SSH host keys made on first boot")
	}
	removeHostResolvConf(tree)
	if !s.epoch.IsZero() {
		n, err := ClampMtimes(ctx, tree, s.epoch)
		if err != nil {
			return err
		}
		done = append(done, fmt.Sprintf("%d modification times clamped to SOURCE_DATE_EPOCH", n))
	}
	if len(done) > 0 {
		s.ui.Say("generalized: %s", strings.Join(done, ", "))
	}
	return nil
}
