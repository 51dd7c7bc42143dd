package rootfs_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/rootfs/checkpoint"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// TestMain keeps the checkpoints the package's builds make in a directory
// of its own, removed at the end, unless IMGBUILD_CHECKPOINTS names one.
func TestMain(m *testing.M) {
	if os.Getenv(checkpoint.DirEnv) == "" {
		dir, err := os.MkdirTemp("", "imgbuild-checkpoints-")
		if err != nil {
			panic(err)
		}
		os.Setenv(checkpoint.DirEnv, dir)
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// checkpointDescription is a small build; %PROVISION% is a shell command,
// %PACKAGES% the packages list.
const checkpointDescription = `
rootfs(
    name = "base",
    package_cache = "%CACHE%",
    formats = ["tar"],
    packages = [%PACKAGES%],
    source_date_epoch = 1700000000,
    provisioners = [shell(inline = ["%PROVISION%"])],
)
`

func checkpointBuild(t *testing.T, dir, provision, packages string) (*result, time.Duration) {
	t.Helper()
	desc := strings.NewReplacer("%CACHE%", sharedCache(t), "%PROVISION%", provision, "%PACKAGES%", packages).Replace(checkpointDescription)
	testkit.WriteFile(t, filepath.Join(dir, "images.star"), desc)
	r := runDescription(t, context.Background(), dir, "images.star", nil)
	res := r.Sum.Result("base")
	if res.Err != nil {
		t.Fatalf("build failed: %v\n%s", res.Err, r.Rec.Log())
	}
	var took time.Duration
	for _, e := range r.Rec.Of(event.StepFinished) {
		if e.Step == "debootstrap" {
			took = e.Elapsed
		}
	}
	t.Logf("steps: %s", strings.Join(r.Rec.StepTimes(), ", "))
	return r, took
}

func messages(r *result) string {
	return strings.Join(r.Rec.Messages(event.Message, event.Warning), "\n")
}

func ranDebootstrap(r *result) bool {
	return strings.Contains(messages(r), "running debootstrap ")
}

// TestADebootstrapCheckpointIsReusedUntilTheBaseChanges: the first build
// keeps its tree; a change of provisioner reuses it without debootstrap
// and makes the same tree plus the change; a damaged checkpoint is found
// and made again; other packages make another checkpoint, evicting the
// first beyond the cache's bound.
func TestADebootstrapCheckpointIsReusedUntilTheBaseChanges(t *testing.T) {
	testkit.SkipIfShort(t, "debootstrap takes a minute")
	requireDebootstrap(t)
	cacheDir := t.TempDir()
	t.Setenv(checkpoint.DirEnv, cacheDir)
	dir := testkit.Workspace(t, nil)
	tarPath := filepath.Join(dir, "output/base/base.tar")

	cold, coldTime := checkpointBuild(t, dir, "echo one > /etc/one", "")
	if !ranDebootstrap(cold) || !strings.Contains(messages(cold), "debootstrap: no checkpoint bookworm-minbase-") || !strings.Contains(messages(cold), "debootstrap: kept the tree as checkpoint bookworm-minbase-") {
		t.Fatalf("the first build did not debootstrap and keep the tree:\n%s", messages(cold))
	}
	c := &checkpoint.Cache{Dir: cacheDir}
	entries, err := c.List(context.Background())
	if err != nil || len(entries) != 1 || entries[0].Problem != "" {
		t.Fatalf("checkpoints %+v, %v; want one", entries, err)
	}
	first := entries[0]
	if first.Key.Suite != "bookworm" || first.Key.Variant != "minbase" || len(first.Key.Packages) != 0 || !strings.HasPrefix(first.Archive, "sha256:") {
		t.Errorf("checkpoint %+v", first)
	}
	coldFiles := tarFiles(t, tarPath)

	warm, warmTime := checkpointBuild(t, dir, "echo two > /etc/two", "")
	if ranDebootstrap(warm) {
		t.Errorf("debootstrap ran again:\n%s", messages(warm))
	}
	if want := "debootstrap: reused checkpoint " + first.ID + " (made "; !strings.Contains(messages(warm), want) {
		t.Errorf("no %q in the log:\n%s", want, messages(warm))
	}
	t.Logf("debootstrap step: %s cold, %s from the checkpoint", coldTime.Round(100*time.Millisecond), warmTime.Round(100*time.Millisecond))
	if warmTime >= coldTime {
		t.Errorf("reusing the checkpoint took %s, debootstrap %s", warmTime, coldTime)
	}
	// The same tree, plus the change.
	warmFiles := tarFiles(t, tarPath)
	if warmFiles["./etc/two"] != "two\n" {
		t.Errorf("/etc/two = %q", warmFiles["./etc/two"])
	}
	if diff := treeDiff(coldFiles, warmFiles); diff != "-./etc/one +./etc/two" {
		t.Errorf("the trees differ by %s; want only -./etc/one +./etc/two", diff)
	}

	// A damaged checkpoint is found, discarded and made again.
	testkit.WriteFile(t, filepath.Join(cacheDir, first.ID, "tree/etc/debian_version"), "evil\n")
	damaged, _ := checkpointBuild(t, dir, "echo two > /etc/two", "")
	warns := strings.Join(damaged.Rec.Messages(event.Warning), "\n")
	if want := "debootstrap: not using the checkpoint: checkpoint is damaged: the tree of checkpoint " + first.ID + " hashes to sha256:"; !strings.Contains(warns, want) {
		t.Errorf("warnings:\n%s\nwant %q", warns, want)
	}
	if !ranDebootstrap(damaged) || !strings.Contains(messages(damaged), "debootstrap: kept the tree as checkpoint "+first.ID) {
		t.Errorf("the damaged checkpoint was not made again:\n%s", messages(damaged))
	}
	if got := tarFiles(t, tarPath)["./etc/debian_version"]; got == "evil\n" {
		t.Error("the damaged file reached the image")
	}

	// Other packages: another checkpoint, and the first evicted when both
	// do not fit.
	entries, _ = c.List(context.Background())
	t.Setenv(checkpoint.MaxSizeEnv, strconv.FormatInt(entries[0].Size*3/2, 10))
	other, _ := checkpointBuild(t, dir, "hello > /etc/greeting", `"hello"`)
	if !ranDebootstrap(other) {
		t.Errorf("other packages reused the checkpoint:\n%s", messages(other))
	}
	if want := "debootstrap: evicted checkpoint " + first.ID; !strings.Contains(messages(other), want) {
		t.Errorf("no %q in the log:\n%s", want, messages(other))
	}
	entries, _ = c.List(context.Background())
	if len(entries) != 1 || entries[0].ID == first.ID || strings.Join(entries[0].Key.Packages, ",") != "hello" {
		t.Errorf("checkpoints after eviction: %+v", entries)
	}
}

// treeDiff lists the paths only in a (-) and only in b (+), and those
// whose content differs (~), sorted.
func treeDiff(a, b map[string]string) string {
	var out []string
	for p, v := range a {
		if w, ok := b[p]; !ok {
			out = append(out, "-"+p)
		} else if v != w {
			out = append(out, "~"+p)
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out = append(out, "+"+p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][1:] < out[j][1:] })
	return strings.Join(out, " ")
}
