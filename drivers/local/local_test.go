package local

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
)

func strMap(kv ...string) *value.Map {
	m := value.NewMap()
	for i := 0; i < len(kv); i += 2 {
		m.Set(kv[i], value.String{S: kv[i+1]})
	}
	return m
}

// newJob decodes settings into a local() config and returns a job for the
// build "web" in a fresh workspace, with its events.
func newJob(t *testing.T, settings *value.Map) (*engine.Job, *testkit.Recorder) {
	t.Helper()
	def := Def()
	cfg := def.Schema.New()
	if _, err := def.Schema.Decode(settings, cfg, schema.Options{}); err != nil {
		t.Fatal(err)
	}
	ui, ev := testkit.NewUI("web", "local")
	return &engine.Job{
		Name: "web", Driver: "local", Config: cfg, UI: ui,
		Steps:     &step.Runner{UI: ui},
		WorkDir:   t.TempDir(),
		Workspace: t.TempDir(),
	}, ev
}

func TestBuildSeedsFilesAndListsThem(t *testing.T) {
	s := value.NewMap()
	s.Set("files", strMap("index.html", "<h1>hi</h1>", "conf/app.conf", "port = 80"))
	job, _ := newJob(t, s)
	art, err := Build(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	want := &engine.Artifact{
		ID: "output/web", Platform: "local",
		Files:  []string{"output/web/conf/app.conf", "output/web/index.html"},
		Fields: map[string]any{"directory": "output/web"},
	}
	if !reflect.DeepEqual(art, want) {
		t.Errorf("artifact = %+v, want %+v", art, want)
	}
	b, err := os.ReadFile(filepath.Join(job.Workspace, "output/web/index.html"))
	if err != nil || string(b) != "<h1>hi</h1>" {
		t.Errorf("index.html = %q, %v", b, err)
	}
	if entries, _ := os.ReadDir(job.WorkDir); len(entries) != 0 {
		t.Errorf("the scratch directory is left in the work dir: %v", entries)
	}
}

func TestBuildRefusesANonEmptyOutputDirectoryBeforeAnythingRuns(t *testing.T) {
	job, ev := newJob(t, strMap("output_directory", "dist"))
	must(t, os.MkdirAll(filepath.Join(job.Workspace, "dist"), 0o755))
	must(t, os.WriteFile(filepath.Join(job.Workspace, "dist/old.txt"), []byte("old"), 0o644))
	_, err := Build(context.Background(), job)
	want := "check output directory: output directory dist already exists and is not empty: remove it, choose another output_directory, or set force = True to replace it"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if got := ev.Steps(""); !reflect.DeepEqual(got, []string{"check output directory"}) {
		t.Errorf("steps run: %v", got)
	}
	if b, _ := os.ReadFile(filepath.Join(job.Workspace, "dist/old.txt")); string(b) != "old" {
		t.Error("the existing output directory was touched")
	}
}

func TestBuildWithForceReplacesTheOutputDirectory(t *testing.T) {
	s := value.NewMap()
	s.Set("force", value.Bool(true))
	s.Set("files", strMap("new.txt", "new"))
	job, _ := newJob(t, s)
	out := filepath.Join(job.Workspace, "output/web")
	must(t, os.MkdirAll(out, 0o755))
	must(t, os.WriteFile(filepath.Join(out, "old.txt"), []byte("old"), 0o644))
	art, err := Build(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(art.Files, []string{"output/web/new.txt"}) {
		t.Errorf("files %v", art.Files)
	}
	entries, _ := os.ReadDir(filepath.Join(job.Workspace, "output"))
	if len(entries) != 1 {
		t.Errorf("output/ holds %v, want only web", entries)
	}
}

func TestBuildAcceptsAnEmptyOutputDirectory(t *testing.T) {
	job, _ := newJob(t, value.NewMap())
	must(t, os.MkdirAll(filepath.Join(job.Workspace, "output/web"), 0o755))
	if _, err := Build(context.Background(), job); err != nil {
		t.Fatal(err)
	}
}

func TestBuildOutsideTheWorkspaceUsesAbsolutePaths(t *testing.T) {
	out := filepath.Join(t.TempDir(), "elsewhere")
	s := strMap("output_directory", out)
	s.Set("files", strMap("a", "a"))
	job, _ := newJob(t, s)
	art, err := Build(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	if art.ID != out || !reflect.DeepEqual(art.Files, []string{filepath.Join(out, "a")}) {
		t.Errorf("artifact %+v", art)
	}
}

func TestBuildRefusesAnOutputDirectoryHoldingTheWorkspace(t *testing.T) {
	for _, dir := range []string{".", ".."} {
		job, _ := newJob(t, strMap("output_directory", dir))
		_, err := Build(context.Background(), job)
		want := `check output directory: output_directory "` + dir + `" would hold the workspace ` + job.Workspace + `: choose a directory inside it, such as "output/web"`
		if err == nil || err.Error() != want {
			t.Errorf("output_directory %q: err = %v\nwant %s", dir, err, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		kw   string
		v    value.Value
		want string
	}{
		{"files", strMap("../x", ""), `for parameter files: "../x" is not a file inside the build's directory`},
		{"files", strMap("/etc/x", ""), `for parameter files: "/etc/x" is absolute: name files relative to the build's directory, such as "etc/x"`},
		{"env", strMap("1X", ""), `for parameter env: "1X" is not a valid environment variable name (letters, digits and _, not starting with a digit)`},
		{"force", value.String{S: "yes"}, `for parameter force: got string, want bool`},
		{"output_dir", value.String{S: "x"}, `unexpected keyword argument "output_dir" (did you mean "output_directory"?)`},
	} {
		s := value.NewMap()
		s.Set(tc.kw, tc.v)
		def := Def()
		_, err := def.Schema.Decode(s, def.Schema.New(), schema.Options{})
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: err = %v\nwant %s", tc.kw, err, tc.want)
		}
	}
}

func TestDocsListEveryKeyword(t *testing.T) {
	docs := Def().Schema.Docs()
	for _, kw := range []string{"output_directory", "force", "files", "env"} {
		if !strings.Contains(docs, kw+" (") {
			t.Errorf("docs lack %s:\n%s", kw, docs)
		}
	}
}

func TestBuildCopiesWhenTheScratchDirectoryIsOnAnotherFileSystem(t *testing.T) {
	defer func(f func(string, string) error) { renameScratch = f }(renameScratch)
	renameScratch = func(from, to string) error {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EXDEV}
	}
	s := value.NewMap()
	s.Set("files", strMap("bin/tool", "#!/bin/sh", "etc/conf", "x"))
	s.Set("force", value.Bool(true))
	job, _ := newJob(t, s)
	must(t, os.MkdirAll(filepath.Join(job.Workspace, "output/web"), 0o755))
	must(t, os.WriteFile(filepath.Join(job.Workspace, "output/web/old"), nil, 0o644))
	art, err := Build(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(art.Files, []string{"output/web/bin/tool", "output/web/etc/conf"}) {
		t.Errorf("files %v", art.Files)
	}
	if entries, _ := os.ReadDir(filepath.Join(job.Workspace, "output")); len(entries) != 1 {
		t.Errorf("output/ holds %v, want only web (no staging or replaced directory)", entries)
	}
	if entries, _ := os.ReadDir(job.WorkDir); len(entries) != 0 {
		t.Errorf("the scratch directory is left: %v", entries)
	}
}

func TestFailedMovePutsTheReplacedOutputBack(t *testing.T) {
	defer func(f func(string, string) error) { renameScratch = f }(renameScratch)
	renameScratch = func(from, to string) error {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EACCES}
	}
	s := value.NewMap()
	s.Set("force", value.Bool(true))
	job, _ := newJob(t, s)
	must(t, os.MkdirAll(filepath.Join(job.Workspace, "output/web"), 0o755))
	must(t, os.WriteFile(filepath.Join(job.Workspace, "output/web/old"), []byte("old"), 0o644))
	_, err := Build(context.Background(), job)
	if err == nil || !strings.HasPrefix(err.Error(), "move to output directory: moving the result into output/web: rename ") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(job.Workspace, "output/web/old")); string(b) != "old" {
		t.Error("the replaced output directory was not put back")
	}
	if entries, _ := os.ReadDir(filepath.Join(job.Workspace, "output")); len(entries) != 1 {
		t.Errorf("output/ holds %v", entries)
	}
	if entries, _ := os.ReadDir(job.WorkDir); len(entries) != 0 {
		t.Errorf("the scratch directory is left: %v", entries)
	}
}
