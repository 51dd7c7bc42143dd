package rootfs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/chroot/chroottest"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

// bootedDescription is two rootfs() builds of an image with a kernel, an
// init and an SSH server, whose tests therefore run on the new disk booted
// under qemu: "booted" has tests that pass, "unbooted" one that fails. Both
// share one debootstrap (its checkpoint); the packages come from the shared
// package cache.
const bootedDescription = `
load("@stdlib//apt.star", "apt_install")

def image(name, tests):
    rootfs(
        name = name,
        suite = "bookworm",
        package_cache = "%CACHE%",
        size = "2G",
        formats = ["qcow2"],
        # In packages, so that network = "dhcp" (the default) finds
        # systemd and configures systemd-networkd: the test machine is
        # reached through qemu's user network.
        packages = ["linux-image-amd64", "systemd-sysv", "udev"],
        provisioners = [apt_install(["openssh-server"])],
        tests = tests,
    )

image("booted", [
    shell(name = "booted, not chrooted", inline = [
        "systemctl is-system-running --wait >/dev/null || true",
        "test \"$(cat /proc/1/comm)\" = systemd",
        "test \"$(stat -f -c %T /)\" = ext2/ext3 && echo booted on the new disk",
    ]),
    shell(name = "a test that writes", inline = ["echo scribble > /etc/scribble", "test -s /root/.ssh/authorized_keys && echo the test key is in the overlay"]),
])
image("unbooted", [shell(name = "nginx is installed", inline = ["test -x /usr/sbin/nginx"])])
`

// The tests of an image with a kernel run on its new disk booted under
// qemu, on an overlay with the test key: a pass leaves the image as it
// was made; a failure leaves no output file, no qemu and no overlay.
func TestTestsOfAnImageWithAKernelRunOnItBootedUnderQemu(t *testing.T) {
	testkit.SkipIfShort(t, "debootstrap and a boot take minutes")
	requireDebootstrap(t)
	testkit.RequireProgram(t, "qemu-system-x86_64", "qemu-system-x86")
	dir := testkit.Workspace(t, map[string]string{"images.star": strings.ReplaceAll(bootedDescription, "%CACHE%", sharedCache(t))})
	d, err := description.Load(description.Options{File: filepath.Join(dir, "images.star"), Registry: registry()})
	if err != nil {
		t.Fatal(err)
	}
	ev := &testkit.Recorder{}
	temp := t.TempDir()
	start := time.Now()
	sum := engine.Run(context.Background(), d.Graph, registry(), event.NewBus(ev), engine.RunOptions{
		Workspace: d.Root, TempDir: temp, Tracker: step.NewTracker(), CleanupTimeout: 2 * time.Minute, Parallel: 2,
	})
	t.Logf("both builds in %s; booted: %s; unbooted: %s", time.Since(start).Round(time.Second),
		strings.Join(ev.Steps("booted"), ", "), strings.Join(ev.Steps("unbooted"), ", "))

	// The passing build: tested on the booted disk, its image untouched.
	res := sum.Result("booted")
	if res.Err != nil {
		t.Fatalf("booted: %v\n%s", res.Err, ev.Log())
	}
	if steps := strings.Join(ev.Steps("booted"), ", "); !strings.HasSuffix(steps, "generalize, images, test, test machine: boot the new disk, run tests") {
		t.Errorf("steps: %s", steps)
	}
	var passed int
	for _, e := range ev.Of(event.TestFinished) {
		if e.Build == "booted" && e.Status == event.Passed {
			passed++
		}
	}
	log := ev.Log()
	if passed != 2 || !strings.Contains(log, "booted on the new disk") || !strings.Contains(log, "the test key is in the overlay") {
		t.Errorf("%d tests passed on the booted disk, want 2\n%s", passed, log)
	}
	disk := filepath.Join(dir, res.Artifact.Fields["disk"].(string))
	sha, err := qemuimg.SHA256(context.Background(), disk)
	if err != nil || "sha256:"+sha != res.Artifact.Fields["checksum"] {
		t.Errorf("the disk changed after it was made: %s, made as %s (%v)", sha, res.Artifact.Fields["checksum"], err)
	}
	if info, err := qemuimg.Inspect(context.Background(), disk); err != nil || info.Backing != "" {
		t.Errorf("the disk: %+v, %v", info, err)
	}

	// The failing build: nothing left.
	msg := ""
	if r := sum.Result("unbooted"); r.Err != nil {
		msg = r.Err.Error()
	}
	if !strings.Contains(msg, `test "nginx is installed": `) || !strings.Contains(msg, "exited with status 1") {
		t.Errorf("unbooted: %q", msg)
	}
	var files []string
	filepath.Walk(filepath.Join(dir, "output/unbooted"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	var left []string
	for _, name := range []string{"booted", "unbooted"} {
		for _, p := range chroottest.ProcessesNamed("process=imgbuild-" + name + "-test") {
			left = append(left, "qemu "+p)
		}
	}
	overlays, _ := filepath.Glob(filepath.Join(temp, "*", "test-boot", "overlay.qcow2"))
	entries, _ := os.ReadDir(temp)
	for _, e := range entries {
		left = append(left, "temp "+e.Name())
	}
	left = append(left, chroottest.ProcessesIn(temp)...)
	for _, m := range chroottest.MountsUnder(temp) {
		left = append(left, "mount "+m)
	}
	t.Logf("after the failed test: %d output files, %d qemu processes and overlays, %d other leftovers", len(files), len(overlays)+len(chroottest.ProcessesNamed("process=imgbuild-unbooted-test")), len(left))
	if len(files)+len(overlays)+len(left) > 0 {
		t.Errorf("left: files %v, overlays %v, other %v", files, overlays, left)
	}
}
