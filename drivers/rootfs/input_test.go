package rootfs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/rootfs"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

// loadErr evaluates a description and returns its error.
func loadErr(t *testing.T, src string) string {
	t.Helper()
	dir := testkit.Workspace(t, map[string]string{"images.star": src})
	_, err := description.Load(description.Options{File: filepath.Join(dir, "images.star"), Registry: registry()})
	if err == nil {
		t.Fatalf("no error for:\n%s", src)
	}
	return err.Error()
}

func TestKeywordsAreCheckedWhenTheFileIsEvaluated(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`rootfs(name = "a", suite = "Bookworm!")`, `for parameter suite: "Bookworm!" is not a Debian suite: name a codename such as "bookworm" or "trixie", or stable, testing, unstable`},
		{`rootfs(name = "a", size = "2X")`, `for parameter size: "2X" is not a size: write it like "2G", "1536M" or a number of bytes`},
		{`rootfs(name = "a", size = "1M")`, `for parameter size: 1M is smaller than the smallest useful ext4 file system (16M)`},
		{`rootfs(name = "a", formats = ["qcow"])`, `for parameter formats: "qcow" is not an output format: use "tar", "raw" or "qcow2" (did you mean "qcow2"?)`},
		{`rootfs(name = "a", formats = ["tar", "tar"])`, `for parameter formats: "tar" is listed twice`},
		{`rootfs(name = "a", formats = [])`, `for parameter formats: is empty: name what to make, any of "tar", "raw", "qcow2"`},
		{`rootfs(name = "a", formats = ["tar"], compress = True)`, `for parameter compress: compresses the qcow2 output, but formats has no "qcow2"`},
		{`rootfs(name = "a", mirror = "ftp.debian.org")`, `for parameter mirror: "ftp.debian.org" is not an http:// or https:// URL of a Debian mirror, such as "http://deb.debian.org/debian"`},
		{`rootfs(name = "a", packages = ["nginx,curl"])`, `for parameter packages: "nginx,curl" is not a Debian package name (lower case letters, digits, and + - .)`},
		{`rootfs(name = "a", variant = "tiny")`, `for parameter variant: "tiny" is not one of "minbase", "buildd", "default"`},
		{`rootfs(name = "a", hostname = "web_1")`, `for parameter hostname: "web_1" is not a host name (letters, digits and -, at most 63)`},
		{`rootfs(name = "a", env = {"A B": "x"})`, `for parameter env: "A B" is not a valid environment variable name`},
		{`rootfs(name = "a", source_date_epoch = -1)`, `for parameter source_date_epoch: -1 is negative: give seconds since 1970, such as the time of the last commit (git log -1 --format=%ct)`},
		{`rootfs(name = "a", sute = "bookworm")`, `unexpected keyword argument "sute" (did you mean "suite"?)`},
	} {
		if got := loadErr(t, tc.src); !strings.Contains(got, tc.want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}

// runBuild runs one rootfs() build of src with a TempDir of its own.
func runBuild(t *testing.T, src string) *result {
	t.Helper()
	dir := testkit.Workspace(t, map[string]string{"images.star": src})
	return runDescription(t, context.Background(), dir, "images.star", nil)
}

func TestAnUnknownSuiteIsNamedWithASuggestion(t *testing.T) {
	testkit.RequireRoot(t)
	mirror := requireMirror(t)
	r := runBuild(t, `rootfs(name = "base", suite = "bookwrom", formats = ["tar"], package_cache = "none")`)
	got := r.Err(t, "base")
	want := `check mirror: unknown suite "bookwrom": the mirror ` + mirror + ` has no ` + mirror + `/dists/bookwrom/Release (404 Not Found); did you mean "bookworm"?`
	if !strings.Contains(got, want) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	r.nothingLeft(t)
}

func TestAnUnreachableMirrorIsNamedWithTheURLThatFailed(t *testing.T) {
	testkit.RequireRoot(t)
	addr := closedPort(t)
	r := runBuild(t, `rootfs(name = "base", mirror = "http://`+addr+`/debian", formats = ["tar"], package_cache = "none")`)
	got := r.Err(t, "base")
	want := "check mirror: cannot reach the mirror http://" + addr + "/debian: fetching http://" + addr + "/debian/dists/bookworm/Release failed: dial tcp " + addr + ": connect: connection refused; check the mirror keyword (or this machine's apt sources, which give the default) and the network"
	if !strings.Contains(got, want) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	r.nothingLeft(t)
}

func TestMissingToolsAreNamedWithTheirPackage(t *testing.T) {
	testkit.RequireRoot(t)
	t.Setenv("PATH", t.TempDir())
	r := runBuild(t, `rootfs(name = "base", formats = ["tar", "qcow2"])`)
	got := r.Err(t, "base")
	want := "rootfs() needs debootstrap, mkfs.ext4 and qemu-img, which are not installed: apt-get install debootstrap e2fsprogs qemu-utils"
	if !strings.Contains(got, want) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestNotRootIsAClearErrorBeforeAnythingStarts runs a build as nobody: it
// must fail at once, before any step, saying root is needed.
func TestNotRootIsAClearErrorBeforeAnythingStarts(t *testing.T) {
	if os.Getenv("ROOTFS_TEST_AS_NOBODY") == "1" {
		dir, _ := os.MkdirTemp("", "ws-")
		os.WriteFile(filepath.Join(dir, "images.star"), []byte(`rootfs(name = "base")`), 0o644)
		d, err := description.Load(description.Options{File: filepath.Join(dir, "images.star"), Registry: registry()})
		if err != nil {
			os.Stdout.WriteString("LOAD: " + err.Error() + "\n")
			return
		}
		ev := &testkit.Recorder{}
		sum := engine.Run(context.Background(), d.Graph, registry(), event.NewBus(ev), engine.RunOptions{Workspace: d.Root, Tracker: step.NewTracker()})
		os.Stdout.WriteString("ERR: " + sum.Result("base").Err.Error() + "\n")
		for _, s := range ev.StepTimes() {
			os.Stdout.WriteString("STEP: " + s + "\n")
		}
		return
	}
	out := testkit.WantAsNobody(t, "^TestNotRootIsAClearErrorBeforeAnythingStarts$", "ROOTFS_TEST_AS_NOBODY=1",
		"ERR: rootfs() needs root (it mounts file systems and changes root in private namespaces), but imgbuild runs as uid 65534: run it as root, for example with sudo")
	if strings.Contains(out, "STEP:") {
		t.Errorf("steps ran without root:\n%s", out)
	}
}

func TestHostMirrorReadsThisMachinesAptSources(t *testing.T) {
	m := rootfs.HostMirror()
	if !strings.HasPrefix(m, "http://") && !strings.HasPrefix(m, "https://") {
		t.Errorf("HostMirror() = %q", m)
	}
	t.Logf("this machine's mirror: %s", m)
}
