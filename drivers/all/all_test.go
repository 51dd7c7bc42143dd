package all

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
)

// These tests run descriptions' graphs end to end through engine.Run with
// the built-in drivers, as the command line tool does: in the workspace,
// with scratch directories in a temporary directory of their own.

// kw builds a settings map from keyword, Go value pairs.
var kw = testkit.Settings

func obj(kind string, line int, fields *value.Map) *value.Object {
	return &value.Object{Kind: kind, Fields: *fields, Pos: fmt.Sprintf("images.star:%d:5", line)}
}

// world is a workspace, a scratch area and a registry.
type world struct {
	t         *testing.T
	workspace string
	temp      string
	reg       *engine.Registry
	ev        *testkit.Recorder
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, workspace: t.TempDir(), temp: t.TempDir(), reg: engine.NewRegistry(), ev: &testkit.Recorder{}}
	Register(w.reg)
	t.Chdir(w.workspace)
	return w
}

func (w *world) run(ctx context.Context, g *engine.Graph, parallel int) *engine.Summary {
	w.t.Helper()
	if err := g.Check(w.reg); err != nil {
		w.t.Fatal(err)
	}
	return engine.Run(ctx, g, w.reg, event.NewBus(w.ev), engine.RunOptions{
		Parallel: parallel, Workspace: w.workspace, TempDir: w.temp,
	})
}

// noScratchLeft fails if a build's scratch directory is left.
func (w *world) noScratchLeft() {
	w.t.Helper()
	if entries, _ := os.ReadDir(w.temp); len(entries) != 0 {
		w.t.Errorf("left in the scratch area: %v", entries)
	}
}

func (w *world) noOutput(build string) {
	w.t.Helper()
	if _, err := os.Stat(filepath.Join(w.workspace, "output", build)); err == nil {
		w.t.Errorf("output/%s exists after the build failed", build)
	}
}

func node(name string, settings *value.Map, provs []*value.Object, posts ...*value.Object) *engine.Node {
	if settings == nil {
		settings = value.NewMap()
	}
	return &engine.Node{Name: name, Driver: "local", Pos: "images.star:1:1", Settings: settings, Provisioners: provs, PostProcessors: posts}
}

func TestRegisterDeclaresTheBuiltins(t *testing.T) {
	r := engine.NewRegistry()
	Register(r)
	want := []string{"amazon_ebs", "ansible", "ansible_local", "aws_ami", "checksum", "chef_solo", "disk_image", "file", "goss", "local", "manifest", "null", "oci_image", "ova", "puppet_apply", "qemu", "rootfs", "shell", "shell_local", "testinfra", "vagrant_box", "vagrant_catalog", "vmware_vmx", "vsphere_clone", "vsphere_iso"}
	if got := r.Names(); !reflect.DeepEqual(got, want) {
		t.Errorf("names %v, want %v", got, want)
	}
	if !r.Builders["local"].HasOutput("directory") {
		t.Error("local builds have no directory output")
	}
}

func TestSuccessfulBuildListsItsFiles(t *testing.T) {
	w := newWorld(t)
	if err := os.WriteFile("nginx.conf", []byte("worker_processes 1;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := engine.NewGraph()
	must(t, g.Add(node("web", kw("files", map[string]string{"README": "seeded"}), []*value.Object{
		obj("file", 2, kw("source", "nginx.conf", "destination", "/etc/nginx/nginx.conf")),
		obj("shell", 3, kw("inline", []string{"mkdir -p srv", `echo "<h1>$IMGBUILD_BUILD</h1>" > srv/index.html`, "echo built"})),
		obj("shell_local", 4, kw("command", "echo on the host > host.txt")),
		obj("shell", 5, kw("inline", "echo not for web", "except", []string{"web"})),
	}, obj("checksum", 6, kw()), obj("manifest", 7, kw("output", "out/manifest.json")))))
	sum := w.run(context.Background(), g, 2)
	r := sum.Result("web")
	if r.Status != event.Succeeded {
		t.Fatalf("web %s: %v\n%s", r.Status, r.Err, w.ev.JSON())
	}
	wantFiles := []string{"output/web/README", "output/web/etc/nginx/nginx.conf", "output/web/srv/index.html", "web.sha256sum"}
	if !reflect.DeepEqual(r.Artifact.Files, wantFiles) {
		t.Errorf("files %v\nwant %v", r.Artifact.Files, wantFiles)
	}
	if r.Artifact.ID != "output/web" || r.Artifact.Fields["directory"] != "output/web" || r.Artifact.Platform != "local" {
		t.Errorf("artifact %+v", r.Artifact)
	}
	if b, _ := os.ReadFile("output/web/srv/index.html"); string(b) != "<h1>web</h1>\n" {
		t.Errorf("index.html = %q", b)
	}
	if b, _ := os.ReadFile("host.txt"); string(b) != "on the host\n" {
		t.Errorf("shell_local did not run in the workspace: %q", b)
	}
	if strings.Contains(w.ev.JSON(), "not for web") {
		t.Error("a provisioner excepting web ran in web")
	}
	var man struct {
		Builds []struct {
			Name  string `json:"name"`
			Files []struct {
				Name string `json:"name"`
			} `json:"files"`
		} `json:"builds"`
	}
	data, err := os.ReadFile("out/manifest.json")
	must(t, err)
	must(t, json.Unmarshal(data, &man))
	if len(man.Builds) != 1 || len(man.Builds[0].Files) != 4 {
		t.Errorf("manifest %s", data)
	}
	w.noScratchLeft()
}

func TestFailingProvisionerLeavesNoOutputAndNoScratch(t *testing.T) {
	w := newWorld(t)
	g := engine.NewGraph()
	must(t, g.Add(node("web", kw("files", map[string]string{"a": "a"}), []*value.Object{
		obj("shell", 2, kw("inline", []string{"echo half > half-done", "echo 'E: Unable to locate package ngnix' >&2", "exit 100"})),
		obj("shell", 3, kw("inline", "echo never")),
	}, obj("manifest", 4, kw()))))
	must(t, g.Add(&engine.Node{Name: "app", Driver: "local", Pos: "images.star:9:1", Settings: kw(),
		DependsOn: []engine.Dependency{{Build: "web", Pos: "images.star:9:20"}}}))
	sum := w.run(context.Background(), g, 2)
	r := sum.Result("web")
	want := "provision: provisioner 1/2: shell at images.star:2:5: inline script exited with status 100 (valid: 0); last lines of stderr:\n    E: Unable to locate package ngnix"
	if r.Status != event.Failed || r.Err == nil || r.Err.Error() != want {
		t.Fatalf("web %s: %v\nwant %s", r.Status, r.Err, want)
	}
	// The engine words the reason; that it names web is what matters here.
	if a := sum.Result("app"); a.Status != event.Skipped || !strings.Contains(a.Err.Error(), `"web"`) {
		t.Errorf("app %q: %q", a.Status, a.Err)
	}
	w.noOutput("web")
	w.noScratchLeft()
	if _, err := os.Stat("manifest.json"); err == nil {
		t.Error("a failed build was recorded in the manifest")
	}
}

func TestCancelMidProvisionerKillsItAndCleansUp(t *testing.T) {
	w := newWorld(t)
	pidFile := filepath.Join(w.workspace, "child.pid")
	g := engine.NewGraph()
	must(t, g.Add(node("web", kw("env", map[string]string{"PIDFILE": pidFile}), []*value.Object{
		obj("shell", 2, kw("inline", []string{"echo started > started", `sleep 300 & echo $! > "$PIDFILE"`, "wait"})),
	})))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *engine.Summary, 1)
	go func() { done <- w.run(ctx, g, 1) }()
	pid := testkit.WaitForPIDFile(t, pidFile)
	cancel()
	var sum *engine.Summary
	select {
	case sum = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the run did not end after cancel")
	}
	if r := sum.Result("web"); r.Status != event.Cancelled {
		t.Errorf("web %s: %v", r.Status, r.Err)
	}
	testkit.WaitGone(t, pid, "the provisioner's child, after the cancel,")
	w.noOutput("web")
	w.noScratchLeft()
}

func TestParallelBuildsShareOneManifest(t *testing.T) {
	w := newWorld(t)
	g := engine.NewGraph()
	for i := range 5 {
		name := fmt.Sprintf("web-%d", i)
		must(t, g.Add(node(name, kw("files", map[string]string{"id": name}), []*value.Object{
			obj("shell", 2, kw("inline", "sleep 0.2; echo $IMGBUILD_BUILD > built-by")),
		}, obj("manifest", 3, kw("output", "out/manifest.json", "custom_data", map[string]string{"n": strconv.Itoa(i)})))))
	}
	sum := w.run(context.Background(), g, 5)
	if !sum.OK() {
		for _, r := range sum.Results {
			t.Errorf("%s %s: %v", r.Build, r.Status, r.Err)
		}
		t.FailNow()
	}
	data, err := os.ReadFile("out/manifest.json")
	must(t, err)
	var man struct {
		Builds []struct {
			Name       string            `json:"name"`
			CustomData map[string]string `json:"custom_data"`
			Files      []json.RawMessage `json:"files"`
		} `json:"builds"`
	}
	must(t, json.Unmarshal(data, &man))
	got := map[string]string{}
	for _, b := range man.Builds {
		got[b.Name] = b.CustomData["n"]
		if len(b.Files) != 2 {
			t.Errorf("%s has %d files", b.Name, len(b.Files))
		}
	}
	want := map[string]string{"web-0": "0", "web-1": "1", "web-2": "2", "web-3": "3", "web-4": "4"}
	if len(man.Builds) != 5 || !reflect.DeepEqual(got, want) {
		t.Errorf("manifest entries %v\n%s", got, data)
	}
	w.noScratchLeft()
}

func TestSecretsStayOutOfTheManifestAndEvents(t *testing.T) {
	w := newWorld(t)
	secret := "s3cr3t-'quoted'-value"
	token := value.NewMap()
	token.Set("token", value.String{S: secret, Sensitive: true})
	mf := value.NewMap()
	mf.Set("custom_data", token)
	env := value.NewMap()
	env.Set("TOKEN", value.String{S: secret, Sensitive: true})
	g := engine.NewGraph()
	must(t, g.Add(node("web", kw(), []*value.Object{
		obj("shell", 2, &value.Map{Keys: []string{"inline", "env"}, Values: map[string]value.Value{
			"inline": value.FromGo([]string{`echo "token is $TOKEN"`, `printf '%s' "$TOKEN" > token`}), "env": env}}),
	}, obj("manifest", 3, mf))))
	sum := w.run(context.Background(), g, 1)
	if r := sum.Result("web"); r.Status != event.Succeeded {
		t.Fatalf("web %s: %v", r.Status, r.Err)
	}
	if b, _ := os.ReadFile("output/web/token"); string(b) != secret {
		t.Errorf("the script got %q, not the secret", b)
	}
	data, _ := os.ReadFile("manifest.json")
	if strings.Contains(string(data), "s3cr3t") || !strings.Contains(string(data), `"token": "(sensitive)"`) {
		t.Errorf("manifest:\n%s", data)
	}
	if text := w.ev.JSON(); strings.Contains(text, "s3cr3t") || !strings.Contains(text, "token is (sensitive)") {
		t.Errorf("events:\n%s", text)
	}
}

func TestABuildUsesAnotherBuildsOutput(t *testing.T) {
	w := newWorld(t)
	g := engine.NewGraph()
	must(t, g.Add(node("base", kw("files", map[string]string{"version": "1"}), nil)))
	files := value.NewMap()
	files.Set("from", &value.Template{Parts: []value.Part{{Lit: "built on "}, {Ref: &value.Ref{Build: "base", Output: "directory"}}}})
	settings := value.NewMap()
	settings.Set("files", files)
	must(t, g.Add(node("web", settings, []*value.Object{
		obj("shell", 2, kw("inline", `cat "$WORKSPACE/output/base/version" > base-version`, "env", map[string]string{"WORKSPACE": w.workspace})),
	})))
	sum := w.run(context.Background(), g, 2)
	if !sum.OK() {
		t.Fatalf("%v / %v", sum.Result("base").Err, sum.Result("web").Err)
	}
	if b, _ := os.ReadFile("output/web/from"); string(b) != "built on output/base" {
		t.Errorf("from = %q", b)
	}
	if b, _ := os.ReadFile("output/web/base-version"); string(b) != "1" {
		t.Errorf("base-version = %q", b)
	}
}

func TestExistingOutputFailsBeforeProvisioning(t *testing.T) {
	w := newWorld(t)
	must(t, os.MkdirAll("output/web", 0o755))
	must(t, os.WriteFile("output/web/keep", []byte("mine"), 0o644))
	g := engine.NewGraph()
	must(t, g.Add(node("web", kw(), []*value.Object{obj("shell_local", 2, kw("command", "touch ran"))})))
	sum := w.run(context.Background(), g, 1)
	want := "check output directory: output/web holds output/web/keep, which imgbuild did not make: move it away or choose another output_directory (force replaces only what imgbuild made)"
	if r := sum.Result("web"); r.Err == nil || r.Err.Error() != want {
		t.Fatalf("err = %v", r.Err)
	}
	if _, err := os.Stat("ran"); err == nil {
		t.Error("a provisioner ran")
	}
	if b, _ := os.ReadFile("output/web/keep"); string(b) != "mine" {
		t.Error("the existing output was touched")
	}
	w.noScratchLeft()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
