package rootfs_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

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
	if err := r.sum.Result("tested").Err; err != nil {
		t.Fatalf("build failed: %v\n%s", err, r.events.Log())
	}
	steps := strings.Join(r.events.Steps("tested"), ", ")
	if !strings.HasSuffix(steps, "generalize, test, test machine: chroot of the tree, run tests, images") {
		t.Errorf("steps %s", steps)
	}
	var passed int
	for _, e := range r.events.Of(event.TestFinished) {
		if e.Status == event.Passed {
			passed++
		}
	}
	if passed != 2 {
		t.Errorf("%d tests passed, want 2\n%s", passed, r.events.Log())
	}
	files := tarFiles(t, filepath.Join(dir, "output/tested/tested.tar"))
	if files["./etc/role"] != "web\n" {
		t.Errorf("the image lacks what the provisioner wrote: %q", files["./etc/role"])
	}
	if _, ok := files["./etc/scribble"]; ok {
		t.Error("what a test wrote is in the image")
	}
	r.nothingLeft(t)
}

// A failed test makes no image: no output file, no mount, nothing in the
// scratch area.
func TestAFailedTestOfTheTreeMakesNoImage(t *testing.T) {
	testkit.SkipIfShort(t, "debootstrap takes a minute")
	requireDebootstrap(t)
	dir := testedTree(t, `[shell(name = "nginx is installed", inline = ["echo looking for nginx", "test -x /usr/sbin/nginx"])]`)
	r := runDescription(t, context.Background(), dir, "images.star", nil)
	msg := r.buildErr(t, "tested")
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
