package post

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	spdxjson "github.com/spdx/tools-golang/json"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

func TestPackageURLsFollowThePurlSpecification(t *testing.T) {
	for _, c := range []struct {
		manager, distro, version string
		p                        engine.Package
		want                     string
	}{
		{"dpkg", "debian", "12", engine.Package{Name: "openssl", Version: "3.0.11-1~deb12u2", Arch: "amd64"},
			"pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"},
		{"dpkg", "ubuntu", "24.04", engine.Package{Name: "libstdc++6", Version: "1:14.2.0-4ubuntu2+b1", Arch: "amd64"},
			"pkg:deb/ubuntu/libstdc%2B%2B6@1%3A14.2.0-4ubuntu2%2Bb1?arch=amd64&distro=ubuntu-24.04"},
		{"dpkg", "", "", engine.Package{Name: "base-files", Version: "12.4", Arch: "all"},
			"pkg:deb/debian/base-files@12.4?arch=all"},
		{"rpm", "fedora", "40", engine.Package{Name: "curl", Version: "8.6.0-8.fc40", Arch: "x86_64", Epoch: "1"},
			"pkg:rpm/fedora/curl@8.6.0-8.fc40?arch=x86_64&distro=fedora-40&epoch=1"},
		{"rpm", "", "", engine.Package{Name: "bash", Version: "5.2.26-3.fc40", Arch: "x86_64"},
			"pkg:rpm/unknown/bash@5.2.26-3.fc40?arch=x86_64"},
	} {
		if got := PackageURL(c.manager, c.distro, c.version, c.p); got != c.want {
			t.Errorf("PackageURL(%s %+v) = %s, want %s", c.manager, c.p, got, c.want)
		}
	}
}

// imageReport is a report of an image with openssl in it, built from
// another build's artifact.
func imageReport(openssl string) *engine.Report {
	return &engine.Report{
		Fingerprint:    "sha256:" + strings.Repeat("ab", 32),
		Upstream:       []engine.Upstream{{Build: "base", Driver: "rootfs", ID: "output/base/base.qcow2", Platform: "local"}},
		PackageManager: "dpkg", Distro: "debian", DistroVersion: "12",
		Packages: []engine.Package{
			{Name: "libc6", Version: "2.36-9+deb12u4", Arch: "amd64"},
			{Name: "openssl", Version: openssl, Arch: "amd64"},
		},
	}
}

// readSBOM parses an SBOM file back with the SPDX library.
func readSBOM(t *testing.T, name string) *spdx.Document {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var doc spdx.Document
	if err := spdxjson.ReadInto(f, &doc); err != nil {
		t.Fatalf("%s is not SPDX JSON: %v", name, err)
	}
	return &doc
}

func TestTheManifestRecordsThePackagesAndWritesAnSPDXSBOM(t *testing.T) {
	t.Chdir(t.TempDir())
	in := artifact(t, "web", map[string]string{"output/web/disk.qcow2": "disk"})
	env := postEnv(event.NewBus(), "web")
	env.Report = imageReport("3.0.11-1~deb12u2")
	p := newPost(t, ManifestDef(), kw("output", "out/manifest.json"))
	if _, err := p.PostProcess(context.Background(), env, in); err != nil {
		t.Fatal(err)
	}
	builds, _ := loadManifest(t, "out/manifest.json")
	b := builds[0]
	if b.PackageManager != "dpkg" || len(b.Packages) != 2 || b.Packages[1] != (engine.Package{Name: "openssl", Version: "3.0.11-1~deb12u2", Arch: "amd64"}) {
		t.Errorf("packages: %s %+v", b.PackageManager, b.Packages)
	}
	if b.Fingerprint != env.Report.Fingerprint || len(b.Upstream) != 1 || b.Upstream[0].ID != "output/base/base.qcow2" {
		t.Errorf("built from: %s %+v", b.Fingerprint, b.Upstream)
	}
	if b.SBOM != "out/web.spdx.json" || b.Distro != "debian" || b.DistroVersion != "12" {
		t.Errorf("sbom %q, distro %q %q", b.SBOM, b.Distro, b.DistroVersion)
	}
	doc := readSBOM(t, "out/web.spdx.json")
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.DocumentName != "web" || !strings.HasPrefix(doc.DocumentNamespace, "https://spdx.org/spdxdocs/imgbuild-web-") {
		t.Errorf("document: %s %s %s %s", doc.SPDXVersion, doc.DataLicense, doc.DocumentName, doc.DocumentNamespace)
	}
	purls := map[string]string{}
	for _, p := range doc.Packages {
		for _, r := range p.PackageExternalReferences {
			purls[p.PackageName] = r.Locator
		}
	}
	if purls["openssl"] != "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12" || len(purls) != 2 {
		t.Errorf("purls: %v", purls)
	}
	image := doc.Packages[0]
	if image.PackageName != "web" || image.PackageVersion != "output/web" || !strings.Contains(image.PackageComment, "input fingerprint "+env.Report.Fingerprint) || !strings.Contains(image.PackageComment, "from build base (rootfs) artifact output/base/base.qcow2") {
		t.Errorf("image package: %+v", image)
	}
	var contains int
	for _, r := range doc.Relationships {
		if r.Relationship == "CONTAINS" && r.RefA.ElementRefID == "Image" {
			contains++
		}
	}
	if contains != 2 || doc.Relationships[0].Relationship != "DESCRIBES" {
		t.Errorf("%d CONTAINS relationships, first %+v", contains, doc.Relationships[0])
	}
}

func TestAnImageWithoutAPackageManagerSaysSo(t *testing.T) {
	t.Chdir(t.TempDir())
	in := artifact(t, "tiny", map[string]string{"output/tiny/disk.raw": "disk"})
	env := postEnv(event.NewBus(), "tiny")
	env.Report = &engine.Report{PackageManager: engine.NoPackageManager}
	p := newPost(t, ManifestDef(), kw("output", "manifest.json", "sbom_output", "sbom/{build}.json"))
	if _, err := p.PostProcess(context.Background(), env, in); err != nil {
		t.Fatal(err)
	}
	builds, _ := loadManifest(t, "manifest.json")
	if builds[0].PackageManager != "none" || builds[0].Packages != nil || builds[0].SBOM != "sbom/tiny.json" {
		t.Errorf("entry: %+v", builds[0])
	}
	doc := readSBOM(t, "sbom/tiny.json")
	if len(doc.Packages) != 1 || !strings.Contains(doc.Packages[0].PackageComment, "no package manager was found in the image") {
		t.Errorf("packages: %+v", doc.Packages)
	}
}

// WhichImagesContain is the README's query: which images contain a
// package at a version, and what were they built from.
const WhichImagesContain = `jq '.builds[] | select(any(.packages[]?; .name == "openssl" and .version == "3.0.11-1~deb12u2")) | {name, artifact_id, fingerprint, upstream, sbom}' output/manifest.json`

func TestTheManifestAnswersWhichImagesContainAPackageAndWhatTheyWereBuiltFrom(t *testing.T) {
	testkit.RequireProgram(t, "jq", "jq")
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), WhichImagesContain) {
		t.Errorf("the README does not show the query:\n%s", WhichImagesContain)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	for _, b := range []struct{ name, openssl string }{{"web", "3.0.11-1~deb12u2"}, {"db", "3.0.13-1~deb12u1"}, {"cache", "3.0.11-1~deb12u2"}} {
		in := artifact(t, b.name, map[string]string{"output/" + b.name + "/disk.qcow2": b.name})
		env := postEnv(event.NewBus(), b.name)
		env.Report = imageReport(b.openssl)
		if _, err := newPost(t, ManifestDef(), kw("output", "output/manifest.json")).PostProcess(context.Background(), env, in); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("sh", "-c", WhichImagesContain+" | jq -s .").Output()
	if err != nil {
		t.Fatalf("%s: %v", WhichImagesContain, err)
	}
	var found []struct {
		Name        string            `json:"name"`
		ArtifactID  string            `json:"artifact_id"`
		Fingerprint string            `json:"fingerprint"`
		Upstream    []engine.Upstream `json:"upstream"`
		SBOM        string            `json:"sbom"`
	}
	if err := json.Unmarshal(out, &found); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var names []string
	for _, f := range found {
		names = append(names, f.Name)
		if f.Fingerprint == "" || len(f.Upstream) != 1 || f.Upstream[0].Build != "base" || f.SBOM != filepath.Join("output", f.Name+".spdx.json") {
			t.Errorf("%s: built from %q %+v, sbom %q", f.Name, f.Fingerprint, f.Upstream, f.SBOM)
		}
	}
	if strings.Join(names, " ") != "web cache" {
		t.Errorf("images with openssl 3.0.11: %v, want web and cache", names)
	}
}
