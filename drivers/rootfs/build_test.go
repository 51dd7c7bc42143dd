package rootfs_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/chroot/chroottest"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// The end-to-end build: debootstrap minbase, provisioners in the chroot
// (apt through the package cache, a daemon left running), the three
// formats, and an image that has lost what identifies one machine.
const e2eDescription = `
rootfs(
    name = "base",
    suite = "bookworm",
    package_cache = "%CACHE%",
    size = "1G",
    formats = ["tar", "raw", "qcow2"],
    source_date_epoch = 1700000000,
    provisioners = [
        shell(inline = [
            "apt-get update -q",
            "apt-get install -y -q --no-install-recommends hello",
            "hello > /etc/greeting",
            "echo 12345678901234567890123456789012 > /etc/machine-id",
            "mkdir -p /etc/ssh && echo key > /etc/ssh/ssh_host_ed25519_key",
            "test -x /usr/sbin/policy-rc.d",
            "getent hosts deb.debian.org >/dev/null",
            "(sleep 1009 &) ; echo daemon started",
        ]),
        file(content = "hi from a file provisioner\n", destination = "/etc/imgbuild-test"),
    ],
)
`

// sharedCache is the package cache the heavy tests share across runs.
func sharedCache(t *testing.T) string {
	if c := os.Getenv("IMGBUILD_TEST_PACKAGE_CACHE"); c != "" {
		return c
	}
	return "/var/cache/imgbuild/packages"
}

func TestBuildEndToEnd(t *testing.T) {
	testkit.SkipIfShort(t, "debootstrap takes a minute")
	requireDebootstrap(t)
	dir := testkit.Workspace(t, map[string]string{"images.star": strings.ReplaceAll(e2eDescription, "%CACHE%", sharedCache(t))})
	start := time.Now()
	r := runDescription(t, context.Background(), dir, "images.star", nil)
	res := r.Sum.Result("base")
	if res.Err != nil {
		t.Fatalf("build failed: %v\n%s", res.Err, r.Rec.Log())
	}
	t.Logf("built in %s; steps: %s", time.Since(start).Round(time.Second), strings.Join(r.Rec.StepTimes(), ", "))
	art := res.Artifact
	want := map[string]string{
		"disk": "output/base/base.qcow2", "format": "qcow2", "tar": "output/base/base.tar",
		"directory": "output/base", "kernel": "", "initrd": "",
	}
	for k, v := range want {
		if art.Fields[k] != v {
			t.Errorf("field %s = %q, want %q", k, art.Fields[k], v)
		}
	}
	if sum, _ := art.Fields["checksum"].(string); !strings.HasPrefix(sum, "sha256:") || len(sum) != 7+64 {
		t.Errorf("checksum %q", sum)
	}
	if got := strings.Join(art.Files, " "); got != "output/base/base.qcow2 output/base/base.raw output/base/base.tar" {
		t.Errorf("files: %s", got)
	}
	r.nothingLeft(t)
	if p := chroottest.ProcessesNamed("sleep 1009"); len(p) > 0 {
		t.Errorf("the provisioner's daemon survived: %v", p)
	}
	if !strings.Contains(r.Rec.Log(), "daemon started") {
		t.Errorf("the provisioner's output was not streamed:\n%s", r.Rec.Log())
	}

	// The tar: the provisioners' files, the generalized identity, times
	// clamped to source_date_epoch.
	files := tarFiles(t, filepath.Join(dir, "output/base/base.tar"))
	if late := tarNewerThan(t, filepath.Join(dir, "output/base/base.tar"), time.Unix(1700000000, 0)); len(late) > 0 {
		t.Errorf("%d entries newer than source_date_epoch, such as %s", len(late), late[0])
	}
	for name, want := range map[string]string{
		"./etc/greeting":      "Hello, world!\n",
		"./etc/imgbuild-test": "hi from a file provisioner\n",
		"./etc/machine-id":    "",
		"./etc/hostname":      "base\n",
	} {
		if got, ok := files[name]; !ok || got != want {
			t.Errorf("tar %s = %q (present %v), want %q", name, got, ok, want)
		}
	}
	for _, gone := range []string{"./etc/ssh/ssh_host_ed25519_key", "./usr/sbin/policy-rc.d", "./etc/resolv.conf"} {
		if _, ok := files[gone]; ok {
			t.Errorf("%s is in the image", gone)
		}
	}
	for name := range files {
		if strings.HasPrefix(name, "./var/cache/apt/archives/") && strings.HasSuffix(name, ".deb") {
			t.Errorf("a downloaded package ships in the image: %s", name)
		}
	}
	if fstab := files["./etc/fstab"]; !strings.Contains(fstab, "UUID=") {
		t.Errorf("fstab: %q", fstab)
	}
	if _, ok := files["./etc/systemd/network/80-imgbuild-dhcp.network"]; ok {
		t.Error("DHCP configured in a tree without systemd")
	}

	// The ext4 file system holds the same, and is clean.
	raw := filepath.Join(dir, "output/base/base.raw")
	if out, err := exec.Command("e2fsck", "-fn", raw).CombinedOutput(); err != nil {
		t.Errorf("e2fsck: %v\n%s", err, out)
	}
	if out, _ := exec.Command("debugfs", "-R", "cat /etc/greeting", raw).Output(); string(out) != "Hello, world!\n" {
		t.Errorf("ext4 /etc/greeting: %q", out)
	}
	info, _ := exec.Command("qemu-img", "info", filepath.Join(dir, "output/base/base.qcow2")).Output()
	if !strings.Contains(string(info), "file format: qcow2") || !strings.Contains(string(info), "virtual size: 1 GiB") {
		t.Errorf("qcow2:\n%s", info)
	}
	// The package cache kept what apt downloaded.
	if debs, _ := filepath.Glob(filepath.Join(sharedCache(t), "apt", "hello_*.deb")); len(debs) == 0 {
		t.Error("apt's download is not in the package cache")
	}

	// Again, with a file of the user's among the outputs: the build's own
	// would be replaced, but that one is not imgbuild's, so it refuses
	// before anything runs, force or not.
	notes := filepath.Join(dir, "output/base/notes.txt")
	if err := os.WriteFile(notes, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runDescription(t, context.Background(), dir, "images.star", nil)
	msg := r.Err(t, "base")
	if !strings.Contains(msg, "check output directory: output/base holds output/base/notes.txt, which imgbuild did not make: move it away or choose another output_directory (force replaces only what imgbuild made)") {
		t.Errorf("second run: %s", msg)
	}
	if b, _ := os.ReadFile(notes); string(b) != "mine" {
		t.Error("the user's file is gone")
	}
}

// tarNewerThan lists the entries of a tar modified after epoch.
func tarNewerThan(t *testing.T, p string, epoch time.Time) []string {
	t.Helper()
	var out []string
	for _, e := range testkit.ReadTarFile(t, p) {
		if e.Header.ModTime.After(epoch) {
			out = append(out, e.Header.Name+" "+e.Header.ModTime.String())
		}
	}
	return out
}

// tarFiles reads a tar's regular files (name → content) and notes other
// entries with an empty content.
func tarFiles(t *testing.T, p string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range testkit.ReadTarFile(t, p) {
		out[e.Header.Name] = e.Data
	}
	return out
}

// TestCancellingTheBuildLeavesNothing cancels a build while debootstrap
// runs and while a provisioner runs, and counts what is left: scratch
// files, processes, mounts, outputs.
func TestCancellingTheBuildLeavesNothing(t *testing.T) {
	testkit.SkipIfShort(t, "debootstrap takes a minute")
	requireDebootstrap(t)
	for _, tc := range []struct{ step, marker, checkpoint string }{
		{"debootstrap", "I: Configuring", "False"}, // its /proc is mounted by then
		{"provision", "provisioner is running", "True"},
	} {
		t.Run(tc.step, func(t *testing.T) {
			dir := testkit.Workspace(t, map[string]string{"images.star": `
rootfs(name = "base", package_cache = "` + sharedCache(t) + `", formats = ["tar"], checkpoint = ` + tc.checkpoint + `,
       provisioners = [shell(inline = ["(sleep 1010 &); echo provisioner is running; sleep 1011"])])
`})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := runDescription(t, ctx, dir, "images.star", func(ev event.Event) {
				if ev.Type == event.Output && ev.Step == tc.step && strings.Contains(ev.Message, tc.marker) {
					cancel()
				}
			})
			res := r.Sum.Result("base")
			if res.Status != event.Cancelled {
				t.Fatalf("status %s (%v)\n%s", res.Status, res.Err, r.Rec.Log())
			}
			left := r.leftovers()
			left = append(left, chroottest.ProcessesNamed("sleep 101")...)
			// This build's debootstrap only (other tests on this machine
			// may be running their own), and whatever still runs in its
			// tree.
			for _, p := range chroottest.ProcessesNamed("/usr/sbin/debootstrap") {
				if strings.Contains(p, r.Temp) || strings.Contains(p, dir) { // its tree is in the run's TempDir
					left = append(left, p)
				}
			}
			left = append(left, chroottest.ProcessesIn(dir)...)
			if entries, _ := os.ReadDir(filepath.Join(dir, "output")); len(entries) > 0 {
				left = append(left, "output "+entries[0].Name())
			}
			t.Logf("cancelled during %s: %d things left", tc.step, len(left))
			if len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}
