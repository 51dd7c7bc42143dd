package post

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
)

// kw builds a settings map from keyword, Go value pairs.
var kw = testkit.Settings

// newPost decodes settings and makes the post-processor.
func newPost(t *testing.T, def *engine.PostProcessorDef, settings *value.Map) engine.PostProcessor {
	t.Helper()
	return testkit.New(t, def.Schema, def.New, settings)
}

// postEnv is the environment of build, with bus's redaction.
func postEnv(bus *event.Bus, build string) *engine.PostEnv {
	return &engine.PostEnv{UI: event.NewUI(bus, build, "local"), Build: build, Driver: "local", Redact: bus.Redact}
}

// artifact writes files (name → content) and returns an artifact of them.
func artifact(t *testing.T, build string, files map[string]string) *engine.Artifact {
	t.Helper()
	a := &engine.Artifact{Build: build, Driver: "local", ID: "output/" + build, Fields: map[string]any{"directory": "output/" + build}}
	for name, content := range files {
		if err := os.MkdirAll(name[:strings.LastIndex(name, "/")], 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		a.Files = append(a.Files, name)
	}
	sort.Strings(a.Files)
	return a
}

func loadManifest(t *testing.T, name string) (builds []ManifestBuild, last string) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Builds      []ManifestBuild `json:"builds"`
		LastRunUUID string          `json:"last_run_uuid"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s is not JSON: %v\n%s", name, err, data)
	}
	return m.Builds, m.LastRunUUID
}

func TestManifestRecordsTheArtifact(t *testing.T) {
	t.Chdir(t.TempDir())
	defer func(f func() time.Time) { now = f }(now)
	now = func() time.Time { return time.Unix(1700000000, 0) }
	in := artifact(t, "web", map[string]string{"output/web/index.html": "hello"})
	p := newPost(t, ManifestDef(), kw("output", "out/manifest.json", "custom_data", map[string]string{"team": "platform"}))
	out, err := p.PostProcess(context.Background(), postEnv(event.NewBus(), "web"), in)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Error("the artifact was not passed on unchanged")
	}
	builds, last := loadManifest(t, "out/manifest.json")
	want := []ManifestBuild{{
		Name: "web", BuilderType: "local", BuildTime: 1700000000,
		Files: []ManifestFile{{Name: "output/web/index.html", Size: 5,
			SHA256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}},
		ArtifactID: "output/web", Fields: map[string]any{"directory": "output/web"},
		CustomData: map[string]string{"team": "platform"}, RunUUID: RunUUID(),
	}}
	if !reflect.DeepEqual(builds, want) {
		t.Errorf("builds = %+v\nwant %+v", builds, want)
	}
	if last != RunUUID() || len(last) != 36 {
		t.Errorf("last_run_uuid = %q", last)
	}
}

func TestManifestReplacesTheBuildsEntryAndKeepsOthers(t *testing.T) {
	t.Chdir(t.TempDir())
	bus := event.NewBus()
	p := newPost(t, ManifestDef(), kw("strip_path", true))
	for _, b := range []string{"web", "db", "web"} {
		in := artifact(t, b, map[string]string{"output/" + b + "/disk.img": b})
		if _, err := p.PostProcess(context.Background(), postEnv(bus, b), in); err != nil {
			t.Fatal(err)
		}
	}
	builds, _ := loadManifest(t, "manifest.json")
	if len(builds) != 2 || builds[0].Name != "web" || builds[1].Name != "db" {
		t.Fatalf("builds = %+v", builds)
	}
	if builds[0].Files[0].Name != "disk.img" {
		t.Errorf("strip_path: file name %q", builds[0].Files[0].Name)
	}
}

func TestManifestFromManyBuildsAtOnce(t *testing.T) {
	t.Chdir(t.TempDir())
	bus := event.NewBus()
	p := newPost(t, ManifestDef(), kw())
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		name := fmt.Sprintf("b%02d", i)
		in := artifact(t, name, map[string]string{"output/" + name + "/f": name})
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := p.PostProcess(context.Background(), postEnv(bus, name), in)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	builds, _ := loadManifest(t, "manifest.json")
	seen := map[string]bool{}
	for _, b := range builds {
		seen[b.Name] = true
	}
	if len(builds) != 20 || len(seen) != 20 {
		t.Errorf("%d entries for %d builds, want 20", len(builds), len(seen))
	}
}

func TestManifestNeverHoldsASecret(t *testing.T) {
	t.Chdir(t.TempDir())
	bus := event.NewBus()
	secret := `hunter2"<\` + "\n\u00e9"
	bus.AddSecret(secret)
	in := artifact(t, "web", map[string]string{"output/web/f": "x"})
	in.ID = "ami-" + secret
	in.Fields["password"] = secret
	in.Fields["tags"] = map[string]string{secret: secret}
	p := newPost(t, ManifestDef(), kw("custom_data", map[string]string{"token": "Bearer " + secret}))
	if _, err := p.PostProcess(context.Background(), postEnv(bus, "web"), in); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile("manifest.json")
	js, _ := json.Marshal(secret)
	for _, form := range []string{secret, string(js[1 : len(js)-1]), "hunter2"} {
		if strings.Contains(string(data), form) {
			t.Errorf("the manifest holds the secret (%q):\n%s", form, data)
		}
	}
	builds, _ := loadManifest(t, "manifest.json")
	if builds[0].ArtifactID != "ami-(sensitive)" || builds[0].CustomData["token"] != "Bearer (sensitive)" {
		t.Errorf("entry %+v", builds[0])
	}
}

func TestManifestErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("manifest.json", []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newPost(t, ManifestDef(), kw())
	_, err := p.PostProcess(context.Background(), postEnv(event.NewBus(), "web"), &engine.Artifact{ID: "x"})
	want := "manifest.json exists and is not an imgbuild manifest (it is not a JSON object: invalid character 'o' in literal null (expecting 'u')): move it away or choose another output"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	// JSON that is not an imgbuild manifest is not replaced either.
	for content, why := range map[string]string{
		`{"name": "app", "version": "1.0.0"}`:          `it has the key "name"`,
		`{"last_run_uuid": "x"}`:                       `it has no "builds" list`,
		`{"builds": [{"id": 1}], "last_run_uuid": ""}`: `build 0 has no name`,
		`[1, 2]`: "it is not a JSON object: json: cannot unmarshal array into Go value of type map[string]json.RawMessage",
	} {
		if err := os.WriteFile("package.json", []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		p := newPost(t, ManifestDef(), kw("output", "package.json"))
		_, err := p.PostProcess(context.Background(), postEnv(event.NewBus(), "web"), &engine.Artifact{ID: "x"})
		want := "package.json exists and is not an imgbuild manifest (" + why + "): move it away or choose another output"
		if err == nil || err.Error() != want {
			t.Errorf("%s: err = %v\nwant %s", content, err, want)
		}
		if b, _ := os.ReadFile("package.json"); string(b) != content {
			t.Errorf("package.json became %s", b)
		}
	}
	_, err = p.PostProcess(context.Background(), postEnv(event.NewBus(), "web"), &engine.Artifact{ID: "x", Files: []string{"gone.img"}})
	want = "artifact file gone.img does not exist (was it removed after the build?)"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

func TestChecksumWritesFilesSha256sumChecks(t *testing.T) {
	t.Chdir(t.TempDir())
	in := artifact(t, "web", map[string]string{"output/web/a.txt": "a", "output/web/b b.txt": "b"})
	p := newPost(t, ChecksumDef(), kw("checksum_types", []string{"sha256", "md5"}))
	out, err := p.PostProcess(context.Background(), postEnv(event.NewBus(), "web"), in)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile("web.sha256sum")
	want := "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb  output/web/a.txt\n" +
		"3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d  output/web/b b.txt\n"
	if string(data) != want {
		t.Errorf("web.sha256sum:\n%s\nwant:\n%s", data, want)
	}
	for _, tool := range []string{"sha256sum", "md5sum"} {
		path := testkit.RequireProgram(t, tool, "coreutils")
		kind := strings.TrimSuffix(tool, "sum")
		if b, err := exec.Command(path, "-c", "web."+kind+"sum").CombinedOutput(); err != nil {
			t.Errorf("%s -c: %v\n%s", tool, err, b)
		}
	}
	wantFiles := append(append([]string(nil), in.Files...), "web.sha256sum", "web.md5sum")
	if !reflect.DeepEqual(out.Files, wantFiles) {
		t.Errorf("files %v, want %v", out.Files, wantFiles)
	}
	if got := out.Fields["sha256"].(map[string]string)["output/web/a.txt"]; got != "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb" {
		t.Errorf("Fields[sha256] = %v", out.Fields["sha256"])
	}
	if out.Fields["md5_file"] != "web.md5sum" || out.Fields["directory"] != "output/web" {
		t.Errorf("fields %v", out.Fields)
	}
	if len(in.Files) != 2 || len(in.Fields) != 1 {
		t.Error("the input artifact was changed")
	}
}

func TestChecksumEscapesOddNamesLikeSha256sum(t *testing.T) {
	if got := sumLine("00", "a\\b\nc"); got != "\\00  a\\\\b\\nc\n" {
		t.Errorf("sumLine = %q", got)
	}
}

func TestChecksumConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		settings *value.Map
		want     string
	}{
		{kw("checksum_types", []string{"crc32"}), `for parameter checksum_types: unknown checksum type "crc32" (supported: md5, sha1, sha256, sha512)`},
		{kw("checksum_types", []string{}), `for parameter checksum_types: is empty: name at least one of md5, sha1, sha256, sha512`},
		{kw("checksum_types", []string{"md5", "md5"}), `for parameter checksum_types: "md5" is listed twice`},
		{kw("checksum_types", []string{"md5", "sha1"}, "output", "SUMS"), `for parameter output: "SUMS" must contain {type} when several checksum_types are given, or each file would overwrite the last`},
		{kw("checksum_type", []string{"md5"}), `unexpected keyword argument "checksum_type" (did you mean "checksum_types"?)`},
	} {
		_, err := testkit.Decode(ChecksumDef().Schema, tc.settings)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", value.Format(tc.settings), err, tc.want)
		}
	}
}

func TestLinksToNoRegularFileAreRecordedButNotSummed(t *testing.T) {
	t.Chdir(t.TempDir())
	in := artifact(t, "root", map[string]string{"output/root/etc/hostname": "box"})
	for _, link := range []struct{ name, target string }{{"output/root/etc/resolv.conf", "../run/resolv.conf"}, {"output/root/lib", "/usr/lib"}} {
		if err := os.Symlink(link.target, link.name); err != nil {
			t.Fatal(err)
		}
		in.Files = append(in.Files, link.name)
	}
	bus := event.NewBus()
	if _, err := newPost(t, ManifestDef(), kw()).PostProcess(context.Background(), postEnv(bus, "root"), in); err != nil {
		t.Fatal(err)
	}
	builds, _ := loadManifest(t, "manifest.json")
	if f := builds[0].Files; len(f) != 3 || f[0].SHA256 == "" || f[1].SHA256 != "" || f[2].SHA256 != "" {
		t.Errorf("files %+v", f)
	}
	if _, err := newPost(t, ChecksumDef(), kw()).PostProcess(context.Background(), postEnv(bus, "root"), in); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile("root.sha256sum"); strings.Count(string(b), "\n") != 1 {
		t.Errorf("root.sha256sum:\n%s", b)
	}
}

func TestALinkOutOfTheWorkspaceIsNeverRead(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte("root:$6$secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	in := artifact(t, "root", map[string]string{"output/root/etc/hostname": "box"})
	if err := os.Symlink(secret, "output/root/etc/shadow"); err != nil {
		t.Fatal(err)
	}
	in.Files = append(in.Files, "output/root/etc/shadow")
	var said []string
	bus := event.NewBus(event.SinkFunc(func(e event.Event) { said = append(said, e.Message) }))
	if _, err := newPost(t, ChecksumDef(), kw()).PostProcess(context.Background(), postEnv(bus, "root"), in); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile("root.sha256sum")
	if strings.Contains(string(b), "shadow") || strings.Count(string(b), "\n") != 1 {
		t.Errorf("root.sha256sum:\n%s", b)
	}
	if _, err := newPost(t, ManifestDef(), kw()).PostProcess(context.Background(), postEnv(bus, "root"), in); err != nil {
		t.Fatal(err)
	}
	builds, _ := loadManifest(t, "manifest.json")
	if f := builds[0].Files; len(f) != 2 || f[1].Name != "output/root/etc/shadow" || f[1].SHA256 != "" || f[1].Size != 0 {
		t.Errorf("files %+v", f)
	}
	want := []string{
		"checksum: skipped 1 file(s) that are not regular files inside the workspace: output/root/etc/shadow (leads out of the workspace)",
		"manifest: recorded 1 file(s) without a checksum: output/root/etc/shadow (leads out of the workspace)",
	}
	for _, w := range want {
		if !slices.Contains(said, w) {
			t.Errorf("not said: %s\nsaid: %q", w, said)
		}
	}
}

func TestChecksumNeverOverwritesTheDescription(t *testing.T) {
	t.Chdir(t.TempDir())
	desc := "local(name = \"web\", post = [checksum(output = \"images.star\")])\n"
	if err := os.WriteFile("images.star", []byte(desc), 0o644); err != nil {
		t.Fatal(err)
	}
	in := artifact(t, "web", map[string]string{"output/web/a.txt": "a"})
	env := postEnv(event.NewBus(), "web")
	env.Force = true
	_, err := newPost(t, ChecksumDef(), kw("output", "images.star")).PostProcess(context.Background(), env, in)
	want := "images.star exists and imgbuild did not make it: move it away or choose another output (force replaces only what imgbuild made)"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if b, _ := os.ReadFile("images.star"); string(b) != desc {
		t.Errorf("the description became:\n%s", b)
	}
}
