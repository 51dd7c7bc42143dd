package qemu_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/all/alltest"
	"github.com/imgbuild/imgbuild/drivers/chroot/chroottest"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemutest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

// registry has every built-in driver.
var registry = alltest.Registry

// tinyWorkspace makes a workspace holding the tiny guest (in tiny/) and
// the description src.
func tinyWorkspace(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	qemutest.TinyGuest(t).Into(t, dir)
	testkit.WriteFile(t, filepath.Join(dir, "images.star"), src)
	return dir
}

// tinyQemu is a qemu() call booting the tiny guest; settings (keyword →
// Starlark expression) replace or add keywords.
func tinyQemu(settings map[string]string) string {
	kw := map[string]string{
		"name":             `"tiny"`,
		"disk":             `"tiny/disk.raw"`,
		"kernel":           `"tiny/vmlinuz"`,
		"initrd":           `"tiny/initramfs.cpio.gz"`,
		"append":           `"console=ttyS0,115200n8 quiet loglevel=4 panic=-1"`,
		"memory":           `256`,
		"ssh_timeout":      `"3m"`,
		"shutdown_timeout": `"1m"`,
	}
	for k, v := range settings {
		kw[k] = v
	}
	keys := make([]string, 0, len(kw))
	for k := range kw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("qemu(\n")
	for _, k := range keys {
		b.WriteString("    " + k + " = " + kw[k] + ",\n")
	}
	b.WriteString(")\n")
	return b.String()
}

// result is a run of a description in the workspace dir.
type result struct {
	*alltest.Result
	dir string
}

func runIn(t *testing.T, ctx context.Context, dir string, on func(event.Event)) *result {
	t.Helper()
	return runLoaded(t, ctx, load(t, dir), on)
}

func load(t *testing.T, dir string) *description.Description {
	t.Helper()
	d, err := description.Load(description.Options{File: filepath.Join(dir, "images.star"), Registry: registry()})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// runLoaded runs an evaluated description with a TempDir of its own.
func runLoaded(t *testing.T, ctx context.Context, d *description.Description, on func(event.Event)) *result {
	t.Helper()
	ev := &testkit.Recorder{}
	ev.OnEvent(on)
	return &result{Result: alltest.Run(t, ctx, d, ev, time.Minute), dir: d.Root}
}

func (r *result) ok(t *testing.T, name string) *engine.Artifact {
	t.Helper()
	res := r.Sum.Result(name)
	if res.Err != nil {
		t.Fatalf("build %s failed: %v\n%s", name, res.Err, r.Rec.Log())
	}
	return res.Artifact
}

// leftovers counts what a run left: its scratch directories, QEMU
// processes of its builds, partial outputs.
func (r *result) leftovers() []string {
	out := r.TempLeft()
	// This run's machines only: their scratch directories are in r.Temp
	// (other test runs on the machine have QEMUs of their own). They may
	// take a moment to go.
	mine := r.Temp + string(filepath.Separator)
	testkit.Poll(testkit.WaitTimeout, func() bool { return len(chroottest.ProcessesNamed(mine)) == 0 })
	for _, p := range chroottest.ProcessesNamed(mine) {
		out = append(out, "process "+p)
	}
	partials, _ := filepath.Glob(filepath.Join(r.dir, "output/*/*.partial"))
	for _, p := range partials {
		out = append(out, "partial "+p)
	}
	return out
}

// nothingLeft fails the test when the run left anything (leftovers).
func (r *result) nothingLeft(t *testing.T) {
	t.Helper()
	if left := r.leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// guestFile reads a file of an output disk image's ext4 file system.
func guestFile(t *testing.T, disk, path string) string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "disk.raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", disk, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert %s: %v: %s", disk, err, out)
	}
	out, err := exec.Command("debugfs", "-R", "cat "+path, raw).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s: %v", path, err)
	}
	return string(out)
}
