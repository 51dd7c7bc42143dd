package post_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/all"
	"github.com/imgbuild/imgbuild/drivers/chroot"
	"github.com/imgbuild/imgbuild/drivers/chroot/chroottest"
	"github.com/imgbuild/imgbuild/drivers/post"
	"github.com/imgbuild/imgbuild/drivers/post/posttest"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

// An SSH build lists its machine's packages (the local sshd's machine:
// this one, with its dpkg) into the manifest and the SBOM.
func TestAnSSHBuildListsItsMachinesPackagesIntoTheManifestAndTheSBOM(t *testing.T) {
	testkit.RequireProgram(t, "dpkg-query", "dpkg")
	srv := sshtest.Start(t)
	want, err := exec.Command("dpkg-query", "-W", "-f", "${Version} ${Architecture}", "openssh-server").Output()
	if err != nil {
		t.Fatalf("dpkg-query here: %v", err)
	}
	ws := testkit.Workspace(t, map[string]string{"images.star": fmt.Sprintf(`
null(name = "web", ssh_host = %q, ssh_port = %d, ssh_username = %q,
    ssh_private_key_file = %q, ssh_host_key = %q,
    provisioners = [shell(inline = ["echo provisioned"])],
    post = [manifest(output = "output/manifest.json")])
`, srv.Host, srv.Port, srv.User, srv.ClientKeyFile, srv.HostKeyFingerprint)})
	reg := engine.NewRegistry()
	all.Register(reg)
	d, err := description.Load(description.Options{File: filepath.Join(ws, "images.star"), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	rec := &testkit.Recorder{}
	store := engine.NewLocalStore(ws)
	sum := engine.Run(context.Background(), d.Graph, reg, event.NewBus(rec), engine.RunOptions{
		Workspace: ws, TempDir: t.TempDir(), Tracker: step.NewTracker(), Store: store,
		Fingerprinter: &engine.Fingerprinter{Registry: reg, Workspace: ws, Key: engine.NewFingerprintKey([]byte("test key"))},
	})
	if err := store.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := sum.Result("web").Err; err != nil {
		t.Fatalf("build: %v\n%s", err, rec.Log())
	}
	b := posttest.Manifest(t, filepath.Join(ws, "output/manifest.json"))[0]
	var got string
	for _, p := range b.Packages {
		if p.Name == "openssh-server" {
			got = p.Version + " " + p.Arch
		}
	}
	t.Logf("%d packages listed with %s on %s %s", len(b.Packages), b.PackageManager, b.Distro, b.DistroVersion)
	if b.PackageManager != "dpkg" || got != string(want) || len(b.Packages) < 50 {
		t.Errorf("manifest: %s, %d packages, openssh-server %q, want %q", b.PackageManager, len(b.Packages), got, want)
	}
	if b.Fingerprint == "" {
		t.Errorf("fingerprint %q", b.Fingerprint)
	}
	if !strings.Contains(rec.Log(), fmt.Sprintf("packages: %d installed, listed with dpkg", len(b.Packages))) {
		t.Errorf("the log does not say the packages were listed:\n%s", rec.Log())
	}

	// The SBOM, read back with the SPDX library.
	doc := posttest.SBOM(t, filepath.Join(ws, b.SBOM))
	if len(doc.Packages) != len(b.Packages)+1 {
		t.Errorf("the SBOM has %d packages, the manifest %d (+1 for the image)", len(doc.Packages), len(b.Packages))
	}
	arch := strings.Fields(string(want))[1]
	wantPurl := post.PackageURL("dpkg", b.Distro, b.DistroVersion, engine.Package{Name: "openssh-server", Version: strings.Fields(string(want))[0], Arch: arch})
	var found bool
	for _, p := range doc.Packages {
		for _, r := range p.PackageExternalReferences {
			found = found || r.Locator == wantPurl && r.RefType == "purl" && r.Category == "PACKAGE-MANAGER"
		}
	}
	if !found || !strings.HasPrefix(wantPurl, "pkg:deb/"+b.Distro+"/openssh-server@") {
		t.Errorf("the SBOM lacks %s", wantPurl)
	}
}

// A machine with neither dpkg-query nor rpm (busybox, whose rpm applet is
// not rpm) has no package manager, which is not an error.
func TestAMachineWithoutAPackageManagerIsRecordedAsSuch(t *testing.T) {
	testkit.RequireRoot(t)
	tree := chroottest.BusyboxTree(t)
	for _, applet := range []string{"rpm", "dpkg"} {
		if err := os.Symlink("busybox", filepath.Join(tree, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	comm, err := chroot.New(tree, chroot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer comm.Close()
	manager, distro, pkgs, err := engine.ListPackages(context.Background(), comm)
	if err != nil || manager != engine.NoPackageManager || pkgs != nil || distro != [2]string{} {
		t.Errorf("ListPackages: %q %q %v, %v", manager, distro, pkgs, err)
	}
}
