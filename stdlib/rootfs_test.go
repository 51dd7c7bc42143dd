package stdlib_test

import (
	"archive/tar"
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/cfgtool/cfgtest"
	"github.com/imgbuild/imgbuild/drivers/chroot"
	"github.com/imgbuild/imgbuild/engine"
)

// TestModulesProvisionARootfsBuild: one debootstrap of Debian bookworm to
// which every new module is applied; the test then reads the image's tar
// and runs sshd -t, visudo and sudo in its unpacked tree.
func TestModulesProvisionARootfsBuild(t *testing.T) {
	cfgtest.RequireDebootstrap(t)
	dir := cfgtest.Workspace(t, t.TempDir(), `
load("@stdlib//users.star", "group", "user", "sudoers")
load("@stdlib//sshd.star", "sshd_config")
load("@stdlib//cloud_init.star", "cloud_init")
load("@stdlib//time.star", "time_sync")
load("@stdlib//updates.star", "unattended_upgrades")
load("@stdlib//kernel.star", "sysctl", "kernel_modules")
rootfs(
    name = "base",
    package_cache = "`+cfgtest.PackageCache(t, "stdlib")+`",
    packages = ["systemd-sysv"],
    formats = ["tar"],
    provisioners = [
        group("deploy", gid = 2000),
        user("alice", uid = 1500, groups = ["deploy", "ops"], comment = "Alice", authorized_keys = ["`+testKey+`"], sudoer = "nopasswd"),
        sudoers("deploy", ["%deploy ALL=(root) NOPASSWD: /usr/bin/systemctl restart chrony"]),
        sshd_config(allow_groups = ["deploy"], options = {"ClientAliveInterval": 300}),
        cloud_init(datasources = ["NoCloud", "None"], config = {"preserve_hostname": True}),
        # systemd-timesyncd first, then chrony, which replaces it: one build
        # goes through both daemons.
        time_sync(daemon = "systemd-timesyncd", servers = ["ntp0.example.com"]),
        time_sync(servers = ["ntp1.example.com"], pools = ["pool.example.org"], timezone = "Europe/Paris"),
        unattended_upgrades(origins = ["security", "updates"], automatic_reboot = True, reboot_time = "03:30"),
        sysctl({"vm.swappiness": 10}, hardening = True),
        kernel_modules(modules = ["br_netfilter"], blacklist = ["floppy"], options = {"kvm": {"ignore_msrs": 1}}),
    ],
)
`)
	start := time.Now()
	r := cfgtest.Run(t, dir, "images.star", nil)
	r.OK(t)
	t.Logf("built in %s:\n%s", time.Since(start).Round(time.Second), r.StepTimes())
	tarPath := filepath.Join(dir, "output/base/base.tar")
	files := cfgtest.TarFiles(t, tarPath)
	has := func(name string, wants ...string) {
		t.Helper()
		e, ok := files[name]
		if !ok {
			t.Errorf("the image has no %s", name)
			return
		}
		cfgtest.WantIn(t, name, e.Data, wants...)
	}
	mode := func(name string, want int64, uid int) {
		t.Helper()
		if h := files[name].Header; h == nil || h.Mode&0o7777 != want || h.Uid != uid {
			t.Errorf("%s: %+v, want mode %o and owner %d", name, h, want, uid)
		}
	}

	// users.star
	has("etc/passwd", "\nalice:x:1500:1500:Alice:/home/alice:/bin/bash\n")
	has("etc/group", "\ndeploy:x:2000:alice\n", "\nops:x:", "\nalice:x:1500:\n")
	has("etc/shadow", "\nalice:!")
	has("home/alice/.ssh/authorized_keys", testKey+"\n")
	mode("home/alice/.ssh/authorized_keys", 0o600, 1500)
	mode("home/alice/.ssh/", 0o700, 1500)
	has("etc/sudoers.d/alice", "alice ALL=(ALL:ALL) NOPASSWD: ALL\n")
	mode("etc/sudoers.d/alice", 0o440, 0)
	has("etc/sudoers.d/deploy", "%deploy ALL=(root) NOPASSWD: /usr/bin/systemctl restart chrony\n")
	// sshd.star
	has("etc/ssh/sshd_config.d/10-imgbuild-hardening.conf", "PermitRootLogin prohibit-password\n", "PasswordAuthentication no\n", "AllowGroups deploy\n", "ClientAliveInterval 300\n")
	// cloud_init.star
	has("etc/cloud/cloud.cfg.d/99-imgbuild.cfg", `{"datasource_list":["NoCloud","None"],"preserve_hostname":true}`)
	for name := range files {
		if strings.HasPrefix(name, "var/lib/cloud/instance") || strings.HasPrefix(name, "var/log/cloud-init") {
			t.Errorf("cloud-init's state was not cleaned: the image has %s", name)
		}
	}
	// time.star
	has("etc/chrony/sources.d/imgbuild.sources", "server ntp1.example.com iburst\n", "pool pool.example.org iburst\n")
	has("etc/chrony/chrony.conf", "# imgbuild: replaced by sources.d: pool ")
	if h := files["etc/systemd/system/multi-user.target.wants/chrony.service"].Header; h == nil || h.Typeflag != tar.TypeSymlink {
		t.Errorf("chrony.service is not enabled: %+v", h)
	}
	if h := files["etc/localtime"].Header; h == nil || h.Linkname != "/usr/share/zoneinfo/Europe/Paris" {
		t.Errorf("etc/localtime: %+v", h)
	}
	has("etc/timezone", "Europe/Paris\n")
	has("etc/systemd/timesyncd.conf.d/imgbuild.conf", "[Time]\nNTP=ntp0.example.com\n")
	// updates.star
	has("etc/apt/apt.conf.d/20auto-upgrades", "APT::Periodic::Unattended-Upgrade \"1\";")
	has("etc/apt/apt.conf.d/52imgbuild-unattended-upgrades", "Unattended-Upgrade::Automatic-Reboot \"true\";", "Automatic-Reboot-Time \"03:30\";", "codename=${distro_codename}-updates")
	// kernel.star
	has("etc/sysctl.d/90-imgbuild.conf", "vm.swappiness = 10\n", "kernel.kptr_restrict = 2\n")
	has("etc/modules-load.d/imgbuild.conf", "br_netfilter\n")
	has("etc/modprobe.d/imgbuild.conf", "blacklist floppy\ninstall floppy /bin/false\noptions kvm ignore_msrs=1\n")
	// the packages the modules installed
	status := files["var/lib/dpkg/status"].Data
	for _, p := range []string{"sudo", "openssh-server", "cloud-init", "chrony", "tzdata", "unattended-upgrades"} {
		if !strings.Contains(status, "\nPackage: "+p+"\nStatus: install ok installed\n") {
			t.Errorf("dpkg's status does not show %s installed", p)
		}
	}
	if !strings.Contains(status, "\nPackage: systemd-timesyncd\nStatus: deinstall ok config-files\n") {
		t.Error("dpkg's status does not show systemd-timesyncd installed, then removed by chrony")
	}

	// The unpacked image, in a chroot: its sshd accepts the configuration
	// (with a host key made for the check: the image has none), and sudo
	// lets alice in without a password.
	tree := t.TempDir()
	if out, err := exec.Command("tar", "-xf", tarPath, "-C", tree, "--numeric-owner").CombinedOutput(); err != nil {
		t.Fatalf("unpacking the image: %v\n%s", err, out)
	}
	c, err := chroot.New(tree, chroot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// inTree returns a command's standard output.
	inTree := func(cmd string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		status, err := c.Run(context.Background(), &engine.Command{Command: cmd, Stdout: &out, Stderr: &errOut})
		if err != nil || status != 0 {
			t.Errorf("%s in the image: status %d, %v\n%s%s", cmd, status, err, out.String(), errOut.String())
		}
		return out.String()
	}
	// /run is each command's own tmpfs.
	effective := inTree("mkdir -p /run/sshd && ssh-keygen -q -t ed25519 -N '' -f /tmp/hostkey && sshd -t -h /tmp/hostkey && sshd -T -h /tmp/hostkey")
	cfgtest.WantIn(t, "sshd -T", effective, "\npermitrootlogin without-password\n", "\npasswordauthentication no\n", "\nkbdinteractiveauthentication no\n",
		"\nciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr\n",
		"\nmacs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com\n", "\nallowgroups deploy\n")
	inTree("visudo -c")
	if got := inTree("su -s /bin/sh alice -c 'sudo -n id -u'"); strings.TrimSpace(got) != "0" {
		t.Errorf("sudo -n as alice: %q, want 0", got)
	}
	cfgtest.WantIn(t, "id alice", inTree("id alice"), "uid=1500(alice)", "2000(deploy)", "(ops)")
}
