package stdlib_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/all/alltest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

// registry has every built-in driver.
var registry = alltest.Registry

func load(t *testing.T, src string) (*description.Description, error) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "images.star")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return description.Load(description.Options{File: file, Registry: registry()})
}

// TestCleanupCleansARootTree runs cleanup(root = ...) for real on a tree
// that looks like a used machine, through a local() build.
func TestCleanupCleansARootTree(t *testing.T) {
	d, err := load(t, `
load("@stdlib//cleanup.star", "cleanup")
local(
    name = "img",
    files = {
        "etc/machine-id": "0123456789abcdef0123456789abcdef\n",
        "var/lib/dbus/machine-id": "0123456789abcdef0123456789abcdef\n",
        "etc/ssh/ssh_host_ed25519_key": "private",
        "etc/ssh/ssh_host_ed25519_key.pub": "public",
        "etc/ssh/sshd_config": "keep me",
        "var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease": "lists",
        "var/cache/apt/pkgcache.bin": "cache",
        "var/cache/apt/archives/nginx_1.22_amd64.deb": "deb",
        "root/.bash_history": "secret commands",
        "home/admin/.bash_history": "more",
        "var/log/syslog": "log lines",
        "var/log/syslog.1": "old",
        "var/log/dpkg.log.2.gz": "older",
        "tmp/build-leftover": "x",
        "var/tmp/cache/file": "x",
        "etc/hostname": "keep me too",
    },
    provisioners = [cleanup(root = "$IMGBUILD_ROOT")],
)
`)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	os.Chdir(d.Root)
	rec := &testkit.Recorder{}
	sum := engine.Run(context.Background(), d.Graph, registry(), rec.Bus(), engine.RunOptions{Workspace: d.Root, TempDir: t.TempDir()})
	if !sum.OK() {
		t.Fatalf("build failed: %v\n%s", sum.Results[0].Err, strings.Join(rec.Messages(event.Output), "\n"))
	}
	root := filepath.Join(d.Root, "output/img")
	read := func(p string) (string, bool) {
		data, err := os.ReadFile(filepath.Join(root, p))
		return string(data), err == nil
	}
	if s, ok := read("etc/machine-id"); !ok || s != "" {
		t.Errorf("etc/machine-id = %q, %v; want it present and empty", s, ok)
	}
	if target, err := os.Readlink(filepath.Join(root, "var/lib/dbus/machine-id")); err != nil || target != "/etc/machine-id" {
		t.Errorf("var/lib/dbus/machine-id should link to /etc/machine-id: %q %v", target, err)
	}
	for _, gone := range []string{
		"etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_ed25519_key.pub",
		"var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease", "var/cache/apt/pkgcache.bin",
		"var/cache/apt/archives/nginx_1.22_amd64.deb", "root/.bash_history", "home/admin/.bash_history",
		"var/log/syslog.1", "var/log/dpkg.log.2.gz", "tmp/build-leftover", "var/tmp/cache/file",
	} {
		if _, ok := read(gone); ok {
			t.Errorf("%s survived the cleanup", gone)
		}
	}
	if s, ok := read("var/log/syslog"); !ok || s != "" {
		t.Errorf("var/log/syslog = %q, %v; want it truncated, not removed", s, ok)
	}
	for _, kept := range []string{"etc/ssh/sshd_config", "etc/hostname"} {
		if _, ok := read(kept); !ok {
			t.Errorf("%s was removed; cleanup must only remove what it names", kept)
		}
	}
}

func TestCleanupPartsCanBeTurnedOff(t *testing.T) {
	d, err := load(t, `
load("@stdlib//cleanup.star", "cleanup_steps")
steps = cleanup_steps(root = "/mnt/img", machine_id = False, logs = False, tmp = False, apt_caches = False, shell_history = False)
if steps != ["rm -f '/mnt/img'/etc/ssh/ssh_host_*"]:
    fail("got %r" % steps)
`)
	if err != nil || d == nil {
		t.Fatal(err)
	}
}

func TestAptInstall(t *testing.T) {
	d, err := load(t, `
load("@stdlib//apt.star", "apt_install", "apt_remove", "apt_clean")
local(name = "x", provisioners = [
    apt_install(["nginx", "curl"]),
    apt_install("htop", update = False, no_install_recommends = False, sudo = True),
    apt_remove(["nano"]),
    apt_clean(),
])
`)
	if err != nil {
		t.Fatal(err)
	}
	plan := engine.MakePlan(d.Graph, registry(), d.Root)
	var got []string
	for _, p := range plan.Builds[0].Provisioners {
		got = append(got, p.Line)
	}
	opts := "-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
	want := []string{
		`shell(inline = ["apt-get update -q", "apt-get ` + opts + ` --no-install-recommends install 'nginx' 'curl'"], env = {"DEBIAN_FRONTEND": "noninteractive"})`,
		`shell(inline = ["sudo -E apt-get ` + opts + ` install 'htop'"], env = {"DEBIAN_FRONTEND": "noninteractive"})`,
		`shell(inline = ["apt-get -y -q purge 'nano'", "apt-get -y -q autoremove"], env = {"DEBIAN_FRONTEND": "noninteractive"})`,
		`shell(inline = ["apt-get clean", "rm -rf /var/lib/apt/lists/*"], env = {"DEBIAN_FRONTEND": "noninteractive"})`,
	}
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Errorf("provisioner %d:\n got %s\nwant %s", i, at(got, i), want[i])
		}
	}
}

func at(list []string, i int) string {
	if i < len(list) {
		return list[i]
	}
	return "(none)"
}

func TestAptRejectsBadPackageNames(t *testing.T) {
	cases := map[string]string{
		`apt_install([])`:                  `apt_install: packages must be a non-empty list of package names, got []`,
		`apt_install(["nginx; rm -rf /"])`: `apt_install: "nginx; rm -rf /" is not a package name`,
		`apt_install(["-y"])`:              `apt_install: "-y" is not a package name`,
		`apt_install([1])`:                 `apt_install: 1 is not a package name`,
	}
	for call, want := range cases {
		_, err := load(t, "load(\"@stdlib//apt.star\", \"apt_install\")\n"+call+"\n")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error = %v\nwant %s", call, err, want)
		}
	}
}
