package rootfs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
)

// stepConfigure writes what every machine made from the image needs: its
// host name, /etc/hosts, an fstab naming the root file system by UUID and,
// with network = "dhcp", a systemd-networkd configuration.
type stepConfigure struct {
	ui     *event.UI
	cfg    *Config
	build  string // the build's name, the default host name
	uuid   string // the root file system's UUID
	tree   *stepDebootstrap
	chroot *stepOpenChroot // runs systemctl in the tree
}

// networkdConfig makes systemd-networkd configure Ethernet by DHCP.
const networkdConfig = `# Written by imgbuild (rootfs network = "dhcp").
[Match]
Type=ether
Name=en* eth*

[Network]
DHCP=yes
`

// Name implements step.Step.
func (s *stepConfigure) Name() string { return "configure" }

// Run implements step.Step.
func (s *stepConfigure) Run(ctx context.Context) error {
	tree := s.tree.tree
	host := s.cfg.Hostname
	if host == "" {
		host = sanitizeHostname(s.build)
	}
	if err := writeInTree(tree, "etc/hostname", host+"\n", 0o644); err != nil {
		return err
	}
	hosts := "127.0.0.1\tlocalhost\n127.0.1.1\t" + host + "\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n"
	if err := writeInTree(tree, "etc/hosts", hosts, 0o644); err != nil {
		return err
	}
	fstab, _ := os.ReadFile(filepath.Join(tree, "etc/fstab"))
	if len(bytes.TrimSpace(fstab)) == 0 || bytes.Contains(fstab, []byte("UNCONFIGURED FSTAB")) {
		if err := writeInTree(tree, "etc/fstab", "# Written by imgbuild: the root file system of the image.\nUUID="+s.uuid+"\t/\text4\terrors=remount-ro\t0\t1\n", 0o644); err != nil {
			return err
		}
	}
	if s.cfg.Network != "dhcp" {
		return nil
	}
	if !inTree(tree, "usr/lib/systemd/system/systemd-networkd.service") && !inTree(tree, "lib/systemd/system/systemd-networkd.service") {
		s.ui.Say("network = \"dhcp\": systemd is not installed in the tree (add systemd-sysv to packages for a bootable image), so networking is left alone")
		return nil
	}
	if err := writeInTree(tree, "etc/systemd/network/80-imgbuild-dhcp.network", networkdConfig, 0o644); err != nil {
		return err
	}
	var out bytes.Buffer
	status, err := s.chroot.comm.Run(ctx, &engine.Command{Command: "systemctl enable systemd-networkd.service", Stdout: &out, Stderr: &out})
	if err != nil {
		return err
	}
	if status != 0 {
		return fmt.Errorf("enabling systemd-networkd in the tree failed (status %d): %s", status, strings.TrimSpace(out.String()))
	}
	s.ui.Say("networking: systemd-networkd, DHCP on every Ethernet interface")
	return nil
}

func sanitizeHostname(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteRune('-')
		}
	}
	h := strings.Trim(b.String(), "-")
	if len(h) > 63 {
		h = h[:63]
	}
	if h == "" {
		h = "debian"
	}
	return h
}
