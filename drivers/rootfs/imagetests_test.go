package rootfs_test

import (
	"context"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/post"
	"github.com/imgbuild/imgbuild/drivers/post/posttest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// testedTree is a rootfs() build of a tar whose tests are tests. It keeps
// no package cache: the shared one is locked for as long as another
// package's rootfs() build runs (the quickstart's), and the checkpoint of
// the debootstrapped tree is what saves the time.
func testedTree(t *testing.T, tests string) string {
	return testkit.Workspace(t, map[string]string{"images.star": `
rootfs(
    name = "tested",
    suite = "bookworm",
    package_cache = "none",
    formats = ["tar"],
    provisioners = [shell(inline = ["echo web > /etc/role"])],
    tests = ` + tests + `,
    post = [manifest(output = "output/manifest.json")],
)
`})
}

// The tests of a rootfs() build run in a chroot of the finished tree, on
// an overlay: what they write does not reach the image, and the image is
// made only once they passed.
func TestTestsRunInAChrootOfTheTreeAndLeaveTheImageAlone(t *testing.T) {
	testkit.SkipIfShort(t, "debootstrap takes a minute")
	requireDebootstrap(t)
	dir := testedTree(t, `[
        shell(name = "the provisioned file is there", inline = ["grep -q web /etc/role", "echo found the role"]),
        shell(name = "a test that writes", inline = ["echo scribble > /etc/scribble", "test ! -e /usr/sbin/policy-rc.d.imgbuild-none"]),
    ]`)
	r := runDescription(t, context.Background(), dir, "images.star", nil)
	if err := r.Sum.Result("tested").Err; err != nil {
		t.Fatalf("build failed: %v\n%s", err, r.Rec.Log())
	}
	steps := strings.Join(r.Rec.Steps("tested"), ", ")
	if !strings.HasSuffix(steps, "generalize, test, test machine: chroot of the tree, run tests, images, post-processor: manifest") {
		t.Errorf("steps %s", steps)
	}
	var passed int
	for _, e := range r.Rec.Of(event.TestFinished) {
		if e.Status == event.Passed {
			passed++
		}
	}
	if passed != 2 {
		t.Errorf("%d tests passed, want 2\n%s", passed, r.Rec.Log())
	}
	files := tarFiles(t, filepath.Join(dir, "output/tested/tested.tar"))
	if files["./etc/role"] != "web\n" {
		t.Errorf("the image lacks what the provisioner wrote: %q", files["./etc/role"])
	}
	if _, ok := files["./etc/scribble"]; ok {
		t.Error("what a test wrote is in the image")
	}
	r.nothingLeft(t)
	checkTreePackages(t, dir, files["./var/lib/dpkg/status"])
}

// checkTreePackages checks that the manifest in dir lists the packages
// dpkg's status file (status) says are installed, and that the SBOM
// beside it holds them with their package URLs.
func checkTreePackages(t *testing.T, dir, status string) {
	t.Helper()
	installed := map[string]string{}
	for _, para := range strings.Split(status, "\n\n") {
		fields := map[string]string{}
		for _, l := range strings.Split(para, "\n") {
			if k, v, ok := strings.Cut(l, ": "); ok {
				fields[k] = v
			}
		}
		if fields["Status"] == "install ok installed" {
			installed[fields["Package"]] = fields["Version"] + " " + fields["Architecture"]
		}
	}
	b := posttest.Manifest(t, filepath.Join(dir, "output/manifest.json"))[0]
	listed := map[string]string{}
	for _, p := range b.Packages {
		listed[p.Name] = p.Version + " " + p.Arch
	}
	t.Logf("the tree's dpkg status has %d installed packages; the manifest lists %d (%s, %s %s), base-files %s", len(installed), len(listed), b.PackageManager, b.Distro, b.DistroVersion, listed["base-files"])
	if len(installed) < 50 || !maps.Equal(installed, listed) || b.PackageManager != "dpkg" || b.Distro != "debian" || b.DistroVersion != "12" {
		t.Errorf("the manifest's packages (%d) are not those installed in the tree (%d)", len(listed), len(installed))
	}
	doc := posttest.SBOM(t, filepath.Join(dir, b.SBOM))
	purls := map[string]bool{}
	for _, p := range doc.Packages {
		for _, r := range p.PackageExternalReferences {
			purls[r.Locator] = true
		}
	}
	v, arch, _ := strings.Cut(installed["base-files"], " ")
	want := post.PackageURL("dpkg", "debian", "12", engine.Package{Name: "base-files", Version: v, Arch: arch})
	if len(purls) != len(installed) || !purls[want] {
		t.Errorf("the SBOM has %d package URLs for %d packages; %s among them: %v", len(purls), len(installed), want, purls[want])
	}
}

// A failed test makes no image: no output file, no mount, nothing in the
// scratch area.
func TestAFailedTestOfTheTreeMakesNoImage(t *testing.T) {
	testkit.SkipIfShort(t, "debootstrap takes a minute")
	requireDebootstrap(t)
	dir := testedTree(t, `[shell(name = "nginx is installed", inline = ["echo looking for nginx", "test -x /usr/sbin/nginx"])]`)
	r := runDescription(t, context.Background(), dir, "images.star", nil)
	msg := r.Err(t, "tested")
	if !strings.Contains(msg, `test "nginx is installed": `) || !strings.Contains(msg, "exited with status 1") {
		t.Errorf("error: %s", msg)
	}
	files := testkit.FilesUnder(filepath.Join(dir, "output"))
	left := r.leftovers()
	t.Logf("after the failed test: %d output files, %d other leftovers", len(files), len(left))
	if len(files)+len(left) > 0 {
		t.Errorf("left: files %v, other %v", files, left)
	}
}
