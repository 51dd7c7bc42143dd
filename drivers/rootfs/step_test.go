package rootfs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// These tests build and run single steps alone on a tree written by hand,
// their inputs given as literals of the earlier steps they read: no
// debootstrap, no chroot, no root.

// handTree writes files into a new tree: path inside it → content.
func handTree(t *testing.T, files map[string]string) string { return testkit.Workspace(t, files) }

func readTree(t *testing.T, tree, p string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tree, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestConfigureAloneNamesTheMachineAndItsRootFileSystem(t *testing.T) {
	tree := handTree(t, map[string]string{"etc/fstab": "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n"})
	s := &stepConfigure{
		ui: event.NewUI(nil, "Web_1", Name), cfg: &Config{Network: "none"}, build: "Web_1",
		uuid: "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
		tree: &stepDebootstrap{tree: tree},
	}
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, tree, "etc/hostname"); got != "web-1\n" {
		t.Errorf("hostname: %q, want the build's name made a host name", got)
	}
	if got := readTree(t, tree, "etc/hosts"); !strings.Contains(got, "127.0.1.1\tweb-1\n") {
		t.Errorf("hosts: %q", got)
	}
	if got, want := readTree(t, tree, "etc/fstab"), "UUID=0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9\t/\text4\terrors=remount-ro\t0\t1\n"; !strings.HasSuffix(got, want) {
		t.Errorf("fstab: %q, want it to end with %q", got, want)
	}
}

func TestGeneralizeAloneRemovesWhatIdentifiesOneMachine(t *testing.T) {
	tree := handTree(t, map[string]string{
		"etc/machine-id":                     "0123456789abcdef0123456789abcdef\n",
		"var/lib/dbus/machine-id":            "0123456789abcdef0123456789abcdef\n",
		"etc/ssh/ssh_host_ed25519_key":       "private",
		"etc/ssh/ssh_host_ed25519_key.pub":   "public",
		"usr/sbin/policy-rc.d":               "#!/bin/sh\n# Written by imgbuild\nexit 101\n",
		"usr/sbin/sshd":                      "",
		"usr/lib/systemd/system/ssh.service": "",
		archives + "/hello_2.10_amd64.deb":   "a package",
	})
	epoch := time.Unix(1700000000, 0).UTC()
	s := &stepGeneralize{
		ui: event.NewUI(nil, "web", Name), epoch: epoch,
		tree:   &stepDebootstrap{tree: tree},
		chroot: &stepOpenChroot{},                // already closed
		cache:  &stepLockCache{dir: t.TempDir()}, // takes the package
	}
	os.MkdirAll(filepath.Join(s.cache.dir, "apt"), 0o755)
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, tree, "etc/machine-id"); got != "" {
		t.Errorf("machine-id: %q, want it empty", got)
	}
	if target, err := os.Readlink(filepath.Join(tree, "var/lib/dbus/machine-id")); err != nil || target != "/etc/machine-id" {
		t.Errorf("dbus machine-id: %q, %v; want a link to /etc/machine-id", target, err)
	}
	for _, gone := range []string{"etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_ed25519_key.pub", "usr/sbin/policy-rc.d", archives + "/hello_2.10_amd64.deb"} {
		if inTree(tree, gone) {
			t.Errorf("%s is still in the tree", gone)
		}
	}
	if got := readTree(t, tree, "etc/systemd/system/imgbuild-ssh-host-keys.service"); !strings.Contains(got, "ExecStart=/usr/bin/ssh-keygen -A") {
		t.Errorf("the first-boot unit that makes host keys: %q", got)
	}
	if _, err := os.Stat(filepath.Join(s.cache.dir, "apt", "hello_2.10_amd64.deb")); err != nil {
		t.Errorf("apt's download was not kept in the package cache: %v", err)
	}
	fi, err := os.Lstat(filepath.Join(tree, "etc/machine-id"))
	if err != nil || !fi.ModTime().Equal(epoch) {
		t.Errorf("machine-id's modification time: %v, %v; want it clamped to %v", fi.ModTime(), err, epoch)
	}
}
