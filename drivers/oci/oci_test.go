package oci_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/all"
	"github.com/imgbuild/imgbuild/drivers/chroot/chroottest"
	"github.com/imgbuild/imgbuild/drivers/diskpost/diskposttest"
	"github.com/imgbuild/imgbuild/drivers/oci"
	"github.com/imgbuild/imgbuild/drivers/rootfs"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

// greeting is the file every test image holds at /etc/greeting.
const greeting = "hello from imgbuild's oci_image test\n"

// treeArtifact makes a root file system tree (busybox, /etc/greeting),
// writes its tar as rootfs() does at output/web/web.tar in a fresh
// workspace, and returns the workspace and the artifact a rootfs() build
// with formats = ["tar"] passes on.
func treeArtifact(t *testing.T) (string, *engine.Artifact) {
	t.Helper()
	tree := chroottest.BusyboxTree(t)
	testkit.WriteFile(t, filepath.Join(tree, "etc/greeting"), greeting)
	if err := os.MkdirAll(filepath.Join(tree, "srv/app"), 0o755); err != nil {
		t.Fatal(err)
	}
	ws := t.TempDir()
	rel := "output/web/web.tar"
	if err := os.MkdirAll(filepath.Join(ws, "output/web"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(ws, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := rootfs.WriteTar(context.Background(), tree, f, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return ws, &engine.Artifact{Build: "web", Driver: "rootfs", ID: rel, Platform: "local", Files: []string{rel},
		Fields: map[string]any{"disk": "", "format": "", "tar": rel, "directory": "output/web", "kernel": "", "initrd": "", "append": ""}}
}

// settings are the image keywords every consumer test checks.
var settings = map[string]any{
	"repository":    "acme/web",
	"tags":          []string{"1.2", "latest"},
	"entrypoint":    []string{"/bin/cat"},
	"cmd":           []string{"/etc/greeting"},
	"env":           map[string]string{"GREETING": "hi", "PATH": "/bin:/usr/bin"},
	"labels":        map[string]string{"org.opencontainers.image.source": "https://example.com/web"},
	"user":          "0:0",
	"workdir":       "/srv/app",
	"exposed_ports": []string{"8080", "53/udp"},
}

// makeImage runs oci_image() with settings over a fresh tree and returns
// the workspace, the artifact passed on and the events.
func makeImage(t *testing.T, settings map[string]any) (string, *engine.Artifact, *testkit.Recorder) {
	t.Helper()
	ws, in := treeArtifact(t)
	env, rec := diskposttest.Env(t, ws, "web")
	out, err := diskposttest.MustNew(t, oci.Def(), settings).PostProcess(context.Background(), env, in)
	if err != nil {
		t.Fatal(err)
	}
	return ws, out, rec
}

func with(extra map[string]any) map[string]any {
	m := map[string]any{}
	for k, v := range settings {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// skopeo runs Debian's skopeo inspect on ref in the workspace ws.
func skopeo(t *testing.T, ws string, args ...string) []byte {
	t.Helper()
	return run(t, ws, "skopeo", append([]string{"inspect"}, args...)...)
}

// run runs a program in dir and returns what it printed, failing the
// test with its error output when it fails.
func run(t *testing.T, dir, program string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(program, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v: %s", program, strings.Join(args, " "), err, msg)
	}
	return out
}

// imageConfig is the part of the OCI image configuration the tests read.
type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Entrypoint   []string            `json:"Entrypoint"`
		Cmd          []string            `json:"Cmd"`
		Env          []string            `json:"Env"`
		Labels       map[string]string   `json:"Labels"`
		User         string              `json:"User"`
		WorkingDir   string              `json:"WorkingDir"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

func checkConfig(t *testing.T, raw []byte, tarSum string) {
	t.Helper()
	var c imageConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("config %s: %v", raw, err)
	}
	cc := c.Config
	if c.Architecture != runtime.GOARCH || c.OS != "linux" ||
		!slices.Equal(cc.Entrypoint, []string{"/bin/cat"}) || !slices.Equal(cc.Cmd, []string{"/etc/greeting"}) ||
		!slices.Equal(cc.Env, []string{"GREETING=hi", "PATH=/bin:/usr/bin"}) ||
		cc.Labels["org.opencontainers.image.source"] != "https://example.com/web" || cc.User != "0:0" || cc.WorkingDir != "/srv/app" ||
		len(cc.ExposedPorts) != 2 || cc.ExposedPorts["8080/tcp"] != struct{}{} || cc.ExposedPorts["53/udp"] != struct{}{} {
		t.Errorf("config as skopeo reads it: %s", raw)
	}
	// The layer is the tree's tar as the build made it: its diff ID is
	// the tar's SHA-256.
	if !slices.Equal(c.RootFS.DiffIDs, []string{"sha256:" + tarSum}) {
		t.Errorf("diff ids %v, the tree's tar is sha256:%s", c.RootFS.DiffIDs, tarSum)
	}
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// TestSkopeoInspectsTheOCILayoutAsDeclared reads the OCI image layout
// with Debian's skopeo (its oci: transport), by each tag: the manifest's
// digest is the one in the artifact, the configuration holds every
// keyword, the layer is the tree; every file of the layout is in the
// artifact (so the manifest records its SHA-256), and the compression
// reported its progress.
func TestSkopeoInspectsTheOCILayoutAsDeclared(t *testing.T) {
	testkit.RequireProgram(t, "skopeo", "skopeo")
	ws, out, rec := makeImage(t, settings)
	dir := out.Fields["oci_image"].(string)
	if dir != "output/web/web.oci" || out.ID != dir || out.Fields["oci_image_ref"] != "oci:output/web/web.oci:1.2" {
		t.Fatalf("artifact %+v", out)
	}
	tarSum := sha256File(t, filepath.Join(ws, "output/web/web.tar"))
	for _, tag := range []string{"1.2", "latest"} {
		raw := skopeo(t, ws, "--raw", "oci:"+dir+":"+tag)
		sum := sha256.Sum256(raw)
		if got := "sha256:" + hex.EncodeToString(sum[:]); got != out.Fields["oci_image_digest"] {
			t.Errorf("%s: manifest digest %s, artifact says %v", tag, got, out.Fields["oci_image_digest"])
		}
		var m struct {
			MediaType string `json:"mediaType"`
			Layers    []struct {
				MediaType string `json:"mediaType"`
				Digest    string `json:"digest"`
			} `json:"layers"`
		}
		json.Unmarshal(raw, &m)
		if id := configDigest(t, raw); id != out.Fields["oci_image_id"] {
			t.Errorf("%s: config digest %s, artifact's id %v", tag, id, out.Fields["oci_image_id"])
		}
		if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
			t.Errorf("manifest %s", raw)
		}
		checkConfig(t, skopeo(t, ws, "--config", "oci:"+dir+":"+tag), tarSum)
	}
	var info struct {
		Layers []string `json:"Layers"`
	}
	json.Unmarshal(skopeo(t, ws, "oci:"+dir+":latest"), &info)
	if len(info.Layers) != 1 {
		t.Errorf("skopeo inspect's layers: %v", info.Layers)
	}
	for _, f := range []string{dir + "/oci-layout", dir + "/index.json", dir + "/blobs/sha256/" + strings.TrimPrefix(info.Layers[0], "sha256:")} {
		if !slices.Contains(out.Files, f) {
			t.Errorf("artifact files %v lack %s", out.Files, f)
		}
	}
	if out.Files[0] != "output/web/web.tar" {
		t.Errorf("the input's files are not kept first: %v", out.Files)
	}
	if p := rec.Of(event.Progress); len(p) == 0 || p[len(p)-1].Message != "compress layer" || p[len(p)-1].Done != p[len(p)-1].Total {
		t.Errorf("progress: %v", p)
	}
}

// TestSkopeoInspectsTheDockerArchiveAsDeclared reads the docker-archive
// tar with skopeo's docker-archive: transport, by each repository:tag.
func TestSkopeoInspectsTheDockerArchiveAsDeclared(t *testing.T) {
	testkit.RequireProgram(t, "skopeo", "skopeo")
	ws, out, _ := makeImage(t, with(map[string]any{"format": "docker-archive", "output": "output/web/web-docker.tar"}))
	p := out.Fields["oci_image"].(string)
	if p != "output/web/web-docker.tar" || out.Fields["oci_image_ref"] != "docker-archive:output/web/web-docker.tar" || !slices.Contains(out.Files, p) {
		t.Fatalf("artifact %+v", out)
	}
	tarSum := sha256File(t, filepath.Join(ws, "output/web/web.tar"))
	for _, ref := range []string{"docker-archive:" + p, "docker-archive:" + p + ":acme/web:1.2", "docker-archive:" + p + ":acme/web:latest"} {
		checkConfig(t, skopeo(t, ws, "--config", ref), tarSum)
	}
	var info struct {
		RepoTags []string `json:"RepoTags"`
		Labels   map[string]string
	}
	raw := skopeo(t, ws, "docker-archive:"+p)
	json.Unmarshal(raw, &info)
	if info.Labels["org.opencontainers.image.source"] != "https://example.com/web" {
		t.Errorf("skopeo inspect: %s", raw)
	}
	// A docker archive keeps no manifest (skopeo makes one of its parts):
	// the image's ID is its configuration's digest.
	if id := configDigest(t, skopeo(t, ws, "--raw", "docker-archive:"+p)); id != out.Fields["oci_image_id"] || out.Fields["oci_image_digest"] != "" {
		t.Errorf("config digest %s; artifact's id %v, digest %v", id, out.Fields["oci_image_id"], out.Fields["oci_image_digest"])
	}
}

// configDigest is the configuration's digest a manifest names.
func configDigest(t *testing.T, manifest []byte) string {
	t.Helper()
	var m struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatalf("manifest %s: %v", manifest, err)
	}
	return m.Config.Digest
}

// TestUmociUnpacksTheTreeAndTheRuntimeConfig unpacks the layout with
// Debian's umoci into an OCI runtime bundle: the tree is the build's, and
// the bundle's process is the one the keywords declared.
func TestUmociUnpacksTheTreeAndTheRuntimeConfig(t *testing.T) {
	testkit.RequireProgram(t, "umoci", "umoci")
	testkit.RequireRoot(t)
	ws, out, _ := makeImage(t, settings)
	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, ws, "umoci", "unpack", "--image", out.Fields["oci_image"].(string)+":latest", bundle)
	if b, err := os.ReadFile(filepath.Join(bundle, "rootfs/etc/greeting")); err != nil || string(b) != greeting {
		t.Errorf("rootfs/etc/greeting: %q, %v", b, err)
	}
	if target, err := os.Readlink(filepath.Join(bundle, "rootfs/bin/cat")); err != nil || target != "busybox" {
		t.Errorf("rootfs/bin/cat: %q, %v", target, err)
	}
	fi, err := os.Stat(filepath.Join(bundle, "rootfs/tmp"))
	if err != nil || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("rootfs/tmp lost its sticky bit: %v, %v", fi, err)
	}
	raw, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rc struct {
		Process struct {
			Args []string `json:"args"`
			Env  []string `json:"env"`
			Cwd  string   `json:"cwd"`
			User struct {
				UID int `json:"uid"`
				GID int `json:"gid"`
			} `json:"user"`
		} `json:"process"`
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &rc); err != nil {
		t.Fatal(err)
	}
	pr := rc.Process
	if !slices.Equal(pr.Args, []string{"/bin/cat", "/etc/greeting"}) || !slices.Contains(pr.Env, "GREETING=hi") || pr.Cwd != "/srv/app" ||
		pr.User.UID != 0 || rc.Annotations["org.opencontainers.image.source"] != "https://example.com/web" {
		t.Errorf("runtime config: %s", raw)
	}
}

// TestPodmanRunsTheImage runs both images with Debian's podman as root:
// the container prints the file the tree holds.
func TestPodmanRunsTheImage(t *testing.T) {
	for _, format := range []string{"oci", "docker-archive"} {
		t.Run(format, func(t *testing.T) {
			ws, out, _ := makeImage(t, with(map[string]any{"format": format}))
			got := podmanRun(t, ws, out.Fields["oci_image_ref"].(string))
			if string(got) != greeting {
				t.Errorf("podman run printed %q, want %q", got, greeting)
			}
		})
	}
}

// podmanRun runs the image ref (as skopeo names it) with podman in the
// workspace ws and returns what the container printed. podman keeps its
// storage in a directory of the test's (vfs: nothing is mounted), and
// runs runc with cgroupfs and explicit limits: this machine's cgroups are
// hybrid, which crun refuses, and its hard limits are below podman's
// defaults.
func podmanRun(t *testing.T, ws, ref string) string {
	t.Helper()
	testkit.RequireProgram(t, "podman", "podman")
	testkit.RequireProgram(t, "runc", "runc")
	testkit.RequireRoot(t)
	// podman refuses a run root of more than 50 characters.
	store, err := os.MkdirTemp("", "podman-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(store) })
	return string(run(t, ws, "podman", "--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"),
		"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--runtime", "runc", "--events-backend", "none",
		"run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", ref))
}

// TestABuildWithoutATreeIsNamed: a build whose artifact holds no root
// file system tree is refused with a message naming the build and what
// it made, and nothing is written.
func TestABuildWithoutATreeIsNamed(t *testing.T) {
	ws := t.TempDir()
	testkit.WriteFile(t, filepath.Join(ws, "output/web/notes.tar"), "not a tar, a note\n")
	env, _ := diskposttest.Env(t, ws, "web")
	p := diskposttest.MustNew(t, oci.Def(), nil)
	for _, c := range []struct {
		in   *engine.Artifact
		want string
	}{
		{&engine.Artifact{Build: "web", Driver: "rootfs", ID: "output/web/web.qcow2", Files: []string{"output/web/web.qcow2"},
			Fields: map[string]any{"disk": "output/web/web.qcow2", "format": "qcow2", "tar": ""}},
			`build "web" (rootfs) made the disk output/web/web.qcow2 and no tar of its root file system tree: oci_image() packs the tree; add "tar" to its formats`},
		{&engine.Artifact{Build: "web", Driver: "qemu", ID: "output/web/web.qcow2", Files: []string{"output/web/web.qcow2"},
			Fields: map[string]any{"disk": "output/web/web.qcow2", "format": "qcow2"}},
			`build "web" (qemu) made "output/web/web.qcow2" (files output/web/web.qcow2), which has no root file system tree: oci_image() packs the tree of a rootfs() build whose formats include "tar"`},
		{&engine.Artifact{Build: "web", Driver: "amazon_ebs", ID: "ami-0abc", Fields: map[string]any{"image_id": "ami-0abc"}},
			`build "web" (amazon_ebs) made "ami-0abc" with no files, which has no root file system tree`},
		{&engine.Artifact{Build: "web", Driver: "local", Fields: map[string]any{"tar": "output/web/notes.tar"}},
			`the tree of build "web", output/web/notes.tar, is not a tar archive (unexpected EOF): oci_image() packs the tar a rootfs() build makes`},
		{&engine.Artifact{Build: "web", Driver: "local", Fields: map[string]any{"tar": "output/web/gone.tar"}},
			`the tree of build "web": open ` + filepath.Join(ws, "output/web/gone.tar") + `: no such file or directory`},
	} {
		_, err := p.PostProcess(context.Background(), env, c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v\nwant %s", err, c.want)
		}
	}
	if entries, _ := filepath.Glob(filepath.Join(ws, "output/web/*")); len(entries) != 1 {
		t.Errorf("left: %v", entries)
	}
}

// TestBadInputSaysWhatIsWrong checks the keywords' messages.
func TestBadInputSaysWhatIsWrong(t *testing.T) {
	for _, c := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{"format": "docker"}, `format: "docker" is not one of "oci", "docker-archive"`},
		{map[string]any{"repository": "Acme/Web"}, `repository: "Acme/Web" is not an image repository: lower-case letters, digits and separators`},
		{map[string]any{"tags": []string{}}, `tags: is empty: name at least one tag, such as "latest"`},
		{map[string]any{"tags": []string{"v1:2"}}, `tags: "v1:2" is not an image tag`},
		{map[string]any{"env": map[string]string{"1X": "y"}}, `env: "1X" is not a valid environment variable name`},
		{map[string]any{"user": "app user"}, `user: "app user" is not a user: a name or uid, optionally :group or :gid`},
		{map[string]any{"workdir": "srv/app"}, `workdir: "srv/app" is not an absolute path: write "/srv/app"`},
		{map[string]any{"exposed_ports": []string{"http"}}, `exposed_ports: "http" is not a port: a number from 1 to 65535`},
		{map[string]any{"exposed_ports": []string{"70000/tcp"}}, `exposed_ports: "70000/tcp" is not a port`},
		{map[string]any{"exposed_ports": []string{"53/icmp"}}, `exposed_ports: "53/icmp": "icmp" is not a protocol a port is exposed for (tcp, udp, sctp)`},
		{map[string]any{"architecture": "amd46"}, `architecture: "amd46" is not an architecture of the OCI image specification (did you mean "amd64"?)`},
		{map[string]any{"architecture": "armhf"}, `its i386 is 386 and its armhf arm`},
		{map[string]any{"compression_level": 0}, "compression_level: 0 is not between 1 (fast) and 9 (small)"},
	} {
		if _, err := diskposttest.New(t, oci.Def(), c.settings); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v\nwant %s", c.settings, err, c.want)
		}
	}
}

// TestABuildNameThatIsNoRepositorySaysToSetOne: the repository defaults
// to the build's name, lower-cased; a name no repository can have asks for
// repository.
func TestABuildNameThatIsNoRepositorySaysToSetOne(t *testing.T) {
	ws, in := treeArtifact(t)
	env, _ := diskposttest.Env(t, ws, "web")
	env.Build = "web+api"
	in.Build = "web+api"
	_, err := diskposttest.MustNew(t, oci.Def(), nil).PostProcess(context.Background(), env, in)
	if want := `the build's name "web+api" is no image repository`; err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "set repository") {
		t.Errorf("got %v, want %s ... set repository", err, want)
	}
}

// TestTheImageIsAnOutputOtherBuildsReferTo: a description whose build
// reads a rootfs() build's oci_image_ref passes the graph's checks; one
// that misspells it is told what the build has.
func TestTheImageIsAnOutputOtherBuildsReferTo(t *testing.T) {
	r := engine.NewRegistry()
	all.Register(r)
	load := func(use string) error {
		dir := t.TempDir()
		testkit.WriteFile(t, filepath.Join(dir, "images.star"), `web = rootfs(name = "web", formats = ["tar"], post = [oci_image(format = "docker-archive")])
shell_local(name = "push", command = "skopeo copy " + `+use+` + " docker://registry.example.com/web")
`)
		_, err := description.Load(description.Options{File: filepath.Join(dir, "images.star"), Registry: r})
		return err
	}
	if err := load("web.oci_image_ref"); err != nil {
		t.Errorf("web.oci_image_ref: %v", err)
	}
	if err := load("web.oci_ref"); err == nil || !strings.Contains(err.Error(), "oci_image_ref") {
		t.Errorf("web.oci_ref: got %v, want a message naming oci_image_ref", err)
	}
}
