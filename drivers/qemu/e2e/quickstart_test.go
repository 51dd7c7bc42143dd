package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/all/alltest"
	"github.com/imgbuild/imgbuild/drivers/cfgtool/cfgtest"
	"github.com/imgbuild/imgbuild/drivers/chroot/chroottest"
	"github.com/imgbuild/imgbuild/drivers/post"
	"github.com/imgbuild/imgbuild/drivers/post/posttest"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemutest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

// registry has every built-in driver.
var registry = alltest.Registry

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "../../..")
}

// copyExamples copies examples/quickstart.star and examples/quickstart/
// into dir.
func copyExamples(t *testing.T, dir string) {
	t.Helper()
	testkit.CopyTree(t, filepath.Join(repoRoot(t), "examples"), dir, func(rel string, _ fs.DirEntry) bool {
		return rel == "." || rel == "quickstart.star" || rel == "quickstart" || strings.HasPrefix(rel, "quickstart/")
	})
}

func requireAll(t *testing.T) {
	t.Helper()
	testkit.SkipIfShort(t, "the quickstart takes minutes")
	// Its first build is a rootfs() build: root, debootstrap, the mirror.
	cfgtest.RequireDebootstrap(t)
	for prog, pkg := range map[string]string{"mkfs.ext4": "e2fsprogs", "qemu-img": "qemu-utils", "qemu-system-x86_64": "qemu-system-x86"} {
		testkit.RequireProgram(t, prog, pkg)
	}
}

// quickstart is the one run of the quickstart the tests share.
var quickstart struct {
	once    sync.Once
	dir     string // the workspace, kept until the package's tests end
	temp    string
	sum     *engine.Summary
	rec     *testkit.Recorder
	elapsed time.Duration
}

func TestMain(m *testing.M) {
	code := m.Run()
	if quickstart.dir != "" && os.Getenv("IMGBUILD_KEEP_QUICKSTART") == "" {
		os.RemoveAll(quickstart.dir)
	}
	os.Exit(code)
}

// runQuickstart runs examples/quickstart.star once per test binary, in a
// copy of the examples.
func runQuickstart(t *testing.T) {
	t.Helper()
	requireAll(t)
	quickstart.once.Do(func() {
		dir, err := os.MkdirTemp("", "imgbuild-quickstart-")
		if err != nil {
			t.Fatal(err)
		}
		quickstart.dir = dir
		quickstart.temp = filepath.Join(dir, ".tmp")
		os.MkdirAll(quickstart.temp, 0o755)
		copyExamples(t, dir)
		d, err := description.Load(description.Options{File: filepath.Join(dir, "quickstart.star"), Registry: registry()})
		if err != nil {
			t.Fatal(err)
		}
		quickstart.rec = &testkit.Recorder{}
		start := time.Now()
		// With state, as imgbuild run keeps it: the manifest records each
		// build's input fingerprint.
		store := engine.NewLocalStore(d.Root)
		quickstart.sum = engine.Run(context.Background(), d.Graph, registry(), event.NewBus(quickstart.rec), engine.RunOptions{
			Workspace: d.Root, TempDir: quickstart.temp, Tracker: step.NewTracker(), CleanupTimeout: 2 * time.Minute,
			Store: store, Fingerprinter: &engine.Fingerprinter{Registry: registry(), Workspace: d.Root, Key: engine.NewFingerprintKey([]byte("quickstart test key"))},
		})
		if err := store.Close(context.Background()); err != nil {
			t.Error(err)
		}
		quickstart.elapsed = time.Since(start)
	})
	if quickstart.sum == nil {
		t.Fatal("the quickstart did not run")
	}
}

func TestQuickstart(t *testing.T) {
	runQuickstart(t)
	sum, rec, dir := quickstart.sum, quickstart.rec, quickstart.dir
	t.Logf("the quickstart took %s:\n%s", quickstart.elapsed.Round(time.Second), strings.Join(rec.StepTimes(), "\n"))
	for _, r := range sum.Results {
		if r.Err != nil {
			t.Fatalf("build %s failed: %v\n%s", r.Build, r.Err, rec.Log())
		}
	}
	text := rec.Log()
	for _, want := range []string{"active", "nginx serves the page", "the machine powered off in", "removed the build's SSH key from root's authorized_keys", "generalized: machine-id emptied"} {
		if !strings.Contains(text, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	art := sum.Result("quickstart").Artifact
	for k, want := range map[string]string{
		"disk": "output/quickstart/quickstart.qcow2", "format": "qcow2", "kernel": "output/quickstart/vmlinuz",
		"initrd": "output/quickstart/initrd.img", "box_libvirt": "output/quickstart/quickstart-libvirt.box",
		"box_virtualbox": "output/quickstart/quickstart-virtualbox.box", "ova": "output/quickstart/quickstart.ova",
	} {
		if art.Fields[k] != want {
			t.Errorf("field %s = %v, want %s", k, art.Fields[k], want)
		}
	}
	if !strings.Contains(text, "kernel and initrd for direct boot: read back from the machine (/vmlinuz and /initrd.img)") {
		t.Error("the kernel was not read back from the machine")
	}
	// The compressed qcow2 is smaller than the base's.
	final, err := qemuimg.Inspect(context.Background(), filepath.Join(dir, "output/quickstart/quickstart.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	baseDisk := filepath.Join(dir, "output/quickstart-base/quickstart-base.qcow2")
	bfi, _ := os.Stat(baseDisk)
	ffi, _ := os.Stat(filepath.Join(dir, "output/quickstart/quickstart.qcow2"))
	t.Logf("base qcow2 %s, final compressed qcow2 %s (virtual %s)", qemuimg.HumanSize(bfi.Size()), qemuimg.HumanSize(ffi.Size()), qemuimg.HumanSize(final.VirtualSize))
	if final.Backing != "" || ffi.Size() >= bfi.Size() {
		t.Errorf("final disk: %+v, %d bytes vs the base's %d", final, ffi.Size(), bfi.Size())
	}
	// The manifest has both builds, with sums that match.
	sums := map[string]string{}
	for _, b := range posttest.Manifest(t, filepath.Join(dir, "output/manifest.json")) {
		for _, f := range b.Files {
			sums[f.Name] = f.SHA256
		}
	}
	for _, f := range []string{"output/quickstart/quickstart.qcow2", "output/quickstart/quickstart-libvirt.box", "output/quickstart/quickstart-virtualbox.box", "output/quickstart/quickstart.ova", "output/quickstart/vmlinuz", "output/quickstart/initrd.img"} {
		got, err := qemuimg.SHA256(context.Background(), filepath.Join(dir, f))
		if err != nil || sums[f] != got {
			t.Errorf("manifest sha256 of %s = %q, file's %q (%v)", f, sums[f], got, err)
		}
	}
	checkQuickstartTestAndPackages(t, dir, rec)
	// What the run leaves: outputs, nothing else.
	var left []string
	entries, _ := os.ReadDir(quickstart.temp)
	for _, e := range entries {
		left = append(left, "temp "+e.Name())
	}
	left = append(left, chroottest.ProcessesNamed("process=imgbuild-quickstart")...)
	left = append(left, chroottest.ProcessesIn(quickstart.temp)...)
	for _, mnt := range chroottest.MountsUnder(dir) {
		left = append(left, "mount "+mnt)
	}
	partials, _ := filepath.Glob(filepath.Join(dir, "output/*/*.partial"))
	left = append(left, partials...)
	t.Logf("left behind: %d %v", len(left), left)
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	var listing []string
	filepath.WalkDir(filepath.Join(dir, "output"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			fi, _ := d.Info()
			rel, _ := filepath.Rel(dir, p)
			listing = append(listing, fmt.Sprintf("%-48s %s", rel, qemuimg.HumanSize(fi.Size())))
		}
		return nil
	})
	t.Logf("output/:\n%s", strings.Join(listing, "\n"))
}

// TestTheQuickstartImageBootsAgain boots the image the quickstart made
// with qemu() again, and reads back a file its provisioner wrote.
func TestTheQuickstartImageBootsAgain(t *testing.T) {
	runQuickstart(t)
	qemutest.RequireQEMU(t)
	res := quickstart.sum.Result("quickstart")
	if res == nil || res.Artifact == nil {
		t.Fatal("the quickstart made no image")
	}
	art := res.Artifact
	src := fmt.Sprintf(`
qemu(
    name = "again",
    disk = %q,
    kernel = %q,
    initrd = %q,
    append = %q,
    ssh_timeout = "10m",
    output_directory = "output/again",
    format = "raw",
    provisioners = [shell(inline = [
        "cat /etc/quickstart-release",
        "systemctl is-active nginx",
        "ls /etc/ssh/ssh_host_ed25519_key",
        "test -s /etc/machine-id && echo machine-id made",
    ])],
)
`, art.Fields["disk"], art.Fields["kernel"], art.Fields["initrd"], art.Fields["append"])
	if err := os.WriteFile(filepath.Join(quickstart.dir, "again.star"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := description.Load(description.Options{File: filepath.Join(quickstart.dir, "again.star"), Registry: registry()})
	if err != nil {
		t.Fatal(err)
	}
	rec := &testkit.Recorder{}
	temp := t.TempDir()
	start := time.Now()
	sum := engine.Run(context.Background(), d.Graph, registry(), event.NewBus(rec), engine.RunOptions{Workspace: d.Root, TempDir: temp, Tracker: step.NewTracker()})
	r := sum.Result("again")
	if r.Err != nil {
		t.Fatalf("booting the quickstart image again: %v\n%s", r.Err, rec.Log())
	}
	t.Logf("booted again in %s:\n%s", time.Since(start).Round(time.Second), strings.Join(rec.StepTimes(), "\n"))
	var out []string
	for _, e := range rec.Events() {
		if e.Type == event.Output && e.Stream == "stdout" {
			out = append(out, e.Message)
		}
	}
	got := strings.Join(out, "\n")
	testkit.WantIn(t, "the second boot's output", got, "quickstart image, built by imgbuild", "active", "/etc/ssh/ssh_host_ed25519_key", "machine-id made")
	if p := chroottest.ProcessesNamed("process=imgbuild-again"); len(p) > 0 {
		t.Errorf("qemu left running: %v", p)
	}
}

// checkQuickstartTestAndPackages checks that the quickstart's test ran on
// the booted image and passed, and that the manifest records it, the
// image's packages (nginx among them, also in the SBOM) and what the image
// was built from.
func checkQuickstartTestAndPackages(t *testing.T, dir string, rec *testkit.Recorder) {
	t.Helper()
	const name = "nginx answers on port 80"
	var finished []event.Event
	for _, e := range rec.Of(event.TestFinished) {
		if e.Build == "quickstart" {
			finished = append(finished, e)
		}
	}
	if len(finished) != 1 || finished[0].Message != name || finished[0].Status != event.Passed {
		t.Errorf("the quickstart's tests: %+v", finished)
	}
	if steps := strings.Join(rec.Steps("quickstart"), ", "); !strings.Contains(steps, "test, ") || !strings.Contains(steps, "run tests") {
		t.Errorf("the quickstart's steps have no test: %s", steps)
	}
	builds := posttest.Manifest(t, filepath.Join(dir, "output/manifest.json"))
	var b *post.ManifestBuild
	var names []string
	for i := range builds {
		names = append(names, builds[i].Name)
		if builds[i].Name == "quickstart" {
			b = &builds[i]
		}
	}
	if b == nil {
		t.Fatalf("the manifest output/manifest.json has no quickstart entry, only %q:\n%+v", names, builds)
	}
	if len(b.Tests) != 1 || b.Tests[0].Name != name || b.Tests[0].Status != string(event.Passed) || !slices.Contains(b.Tests[0].Output, name) {
		t.Errorf("the manifest's tests: %+v", b.Tests)
	}
	var nginx string
	for _, p := range b.Packages {
		if p.Name == "nginx" {
			nginx = p.Version
		}
	}
	t.Logf("the quickstart image has %d packages (%s), nginx %s; fingerprint %s, upstream %+v", len(b.Packages), b.PackageManager, nginx, b.Fingerprint, b.Upstream)
	if b.PackageManager != "dpkg" || nginx == "" {
		t.Errorf("the manifest lacks nginx among %d packages (%q)", len(b.Packages), b.PackageManager)
	}
	if b.Fingerprint == "" || len(b.Upstream) != 1 || b.Upstream[0].Build != "quickstart-base" || b.Upstream[0].Driver != "rootfs" {
		t.Errorf("what the image was built from: %q %+v", b.Fingerprint, b.Upstream)
	}
	var inSBOM bool
	for _, p := range posttest.SBOM(t, filepath.Join(dir, b.SBOM)).Packages {
		inSBOM = inSBOM || p.PackageName == "nginx" && p.PackageVersion == nginx
	}
	if !inSBOM {
		t.Errorf("the SBOM %s lacks nginx %s", b.SBOM, nginx)
	}
}
