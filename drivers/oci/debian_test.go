package oci_test

import (
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/cfgtool/cfgtest"
)

// TestADebianRootfsBuildRunsInPodman builds Debian bookworm with
// rootfs() (formats = ["tar"]) and oci_image() in one description, and
// runs the image with podman: the container is the build's tree, with
// the provisioner's file and Debian's own.
func TestADebianRootfsBuildRunsInPodman(t *testing.T) {
	cfgtest.RequireDebootstrap(t)
	dir := cfgtest.Workspace(t, t.TempDir(), `
rootfs(
    name = "debian",
    package_cache = "`+cfgtest.PackageCache(t, "oci")+`",
    formats = ["tar"],
    provisioners = [shell(inline = ["echo made by imgbuild > /etc/imgbuild-greeting"])],
    post = [oci_image(cmd = ["/bin/sh", "-c", "cat /etc/imgbuild-greeting /etc/debian_version"], labels = {"org.opencontainers.image.title": "debian"})],
)
`)
	start := time.Now()
	res := cfgtest.Run(t, dir, "images.star", nil)
	r := res.Sum.Result("debian")
	if r.Err != nil {
		t.Fatalf("build: %v\n%s", r.Err, res.Rec.Log())
	}
	t.Logf("built in %s: %s", time.Since(start).Round(time.Second), strings.Join(res.Rec.StepTimes(), ", "))
	ref, _ := r.Artifact.Fields["oci_image_ref"].(string)
	if ref != "oci:output/debian/debian.oci:latest" {
		t.Fatalf("artifact %+v", r.Artifact)
	}
	got := podmanRun(t, dir, ref)
	if !strings.HasPrefix(got, "made by imgbuild\n12.") {
		t.Errorf("podman run printed %q, want the provisioner's file and Debian 12's version", got)
	}
}
