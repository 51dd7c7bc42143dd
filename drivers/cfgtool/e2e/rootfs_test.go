package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/cfgtool/cfgtest"
	"github.com/imgbuild/imgbuild/drivers/chroot/chroottest"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// TestConfigurationToolsProvisionARootfsBuild: one debootstrap, three
// provisioners. ansible() runs on this machine and reaches the chroot
// through the adapter (a file, a package, a template); ansible_local()
// and puppet_apply() install Ansible and Puppet from the mirror into the
// tree and apply a playbook and a manifest inside it (each a package, a
// file, a service enabled). The test reads the image's tar.
func TestConfigurationToolsProvisionARootfsBuild(t *testing.T) {
	requireDebootstrap(t)
	dir := cfgtest.Workspace(t, "testdata", `
rootfs(
    name = "app",
    package_cache = "`+cfgtest.PackageCache(t, "cfgmgmt")+`",
    packages = ["python3", "systemd-sysv"],
    formats = ["tar"],
    provisioners = [
        ansible(
            playbook_file = "site/site.yml",
            groups = ["web"],
            extra_vars = {"dest_dir": "/srv/app", "greeting": "chrooted", "port": 99},
        ),
        ansible_local(playbook_file = "inside.yml", install = True, inventory_groups = ["web"]),
        puppet_apply(manifest_file = "inside.pp", install = True, facter = {"role": "app"}),
    ],
)
`)
	testkit.CopyTree(t, filepath.Join(repoRoot(), "drivers/ansible/testdata/site"), filepath.Join(dir, "site"), nil)
	start := time.Now()
	r := cfgtest.Run(t, dir, "images.star", nil)
	r.OK(t)
	t.Logf("built in %s:\n%s", time.Since(start).Round(time.Second), r.StepTimes())
	files := cfgtest.TarFiles(t, filepath.Join(dir, "output/app/app.tar"))
	// ansible() through the adapter
	check(t, files, "srv/app/written", "written by ansible for app\n")
	check(t, files, "srv/app/app.conf", "greeting = chrooted\nport = 100\n")
	check(t, files, "srv/app/app.conf", "build = app on rootfs\n")
	check(t, files, "usr/bin/hello", "")
	// ansible_local()
	check(t, files, "usr/bin/ansible-playbook", "")
	check(t, files, "usr/sbin/cron", "")
	check(t, files, "etc/imgbuild-inside", "configured by ansible_local in app\n")
	enabled(t, files, "cron.service")
	// puppet_apply()
	check(t, files, "usr/bin/puppet", "")
	check(t, files, "usr/sbin/rsyslogd", "")
	check(t, files, "etc/imgbuild-puppet", "configured by puppet_apply, role app\n")
	enabled(t, files, "rsyslog.service")
	for name := range files {
		if strings.Contains(name, "imgbuild-ansible") || strings.Contains(name, "imgbuild-puppet-") || strings.Contains(name, "ansible-tmp-") {
			t.Errorf("the image holds %s, left by a provisioner", name)
		}
	}
	if p := chroottest.ProcessesIn(r.Temp); len(p) > 0 {
		t.Errorf("left running: %v", p)
	}
}
