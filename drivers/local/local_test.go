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
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
)

// strMap builds a map from key, value pairs.
var strMap = testkit.Settings

// newJob decodes settings into a local() config and returns a job for the
// build "web" in a fresh workspace, with its events.
func newJob(t *testing.T, settings *value.Map) (*engine.Job, *testkit.Recorder) {
	t.Helper()
	cfg, err := testkit.Decode(Def().Schema, settings)
	if err != nil {
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

// runJob runs the job as the engine does: Build, then the end of what the
// steps made.
func runJob(t *testing.T, job *engine.Job) (*engine.Artifact, error) {
	t.Helper()
	art, err := Build(context.Background(), job)
	if ferr := job.Steps.Finish(context.Background(), err != nil); ferr != nil {
		t.Fatal(ferr)
	}
	return art, err
}

// again returns a job for the same build in the same workspace.
func again(t *testing.T, prev *engine.Job, settings *value.Map) *engine.Job {
	t.Helper()
	job, _ := newJob(t, settings)
	job.Workspace = prev.Workspace
	return job
}

func TestBuildRefusesAnOutputDirectoryImgbuildDidNotMakeBeforeAnythingRuns(t *testing.T) {
	for _, force := range []bool{false, true} {
		s := strMap("output_directory", "dist")
		s.Set("force", value.Bool(force))
		job, ev := newJob(t, s)
		must(t, os.MkdirAll(filepath.Join(job.Workspace, "dist"), 0o755))
		must(t, os.WriteFile(filepath.Join(job.Workspace, "dist/old.txt"), []byte("old"), 0o644))
		_, err := runJob(t, job)
		want := "check output directory: dist holds dist/old.txt, which imgbuild did not make: move it away or choose another output_directory (force replaces only what imgbuild made)"
		if err == nil || err.Error() != want {
			t.Fatalf("force %v: err = %v\nwant %s", force, err, want)
		}
		if got := ev.Steps(""); !reflect.DeepEqual(got, []string{"check output directory"}) {
			t.Errorf("steps run: %v", got)
		}
		if b, _ := os.ReadFile(filepath.Join(job.Workspace, "dist/old.txt")); string(b) != "old" {
			t.Error("the existing output directory was touched")
		}
	}
}

func TestBuildReplacesItsOwnEarlierOutputDirectoryWithoutForce(t *testing.T) {
	s := value.NewMap()
	s.Set("files", strMap("old.txt", "old"))
	first, _ := newJob(t, s)
	if _, err := runJob(t, first); err != nil {
		t.Fatal(err)
	}
	s = value.NewMap()
	s.Set("files", strMap("new.txt", "new"))
	job := again(t, first, s)
	art, err := runJob(t, job)
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
	if _, err := runJob(t, job); err != nil {
		t.Fatal(err)
	}
}

func TestBuildRefusesAnOutputDirectoryOutsideTheWorkspace(t *testing.T) {
	top := t.TempDir()
	ws := filepath.Join(top, "ws")
	outside := filepath.Join(top, "x")
	must(t, os.MkdirAll(ws, 0o755))
	must(t, os.MkdirAll(outside, 0o755))
	must(t, os.WriteFile(filepath.Join(outside, "precious"), []byte("keep"), 0o644))
	must(t, os.Symlink(outside, filepath.Join(ws, "link")))
	for dir, want := range map[string]string{
		"../x":  `check output directory: output_directory: "../x" leads out of the workspace through "..": outputs go inside the workspace, such as "output/x"`,
		outside: `check output directory: output_directory: "` + outside + `" is absolute: outputs go inside the workspace; write a path relative to it, such as "output/x"`,
		"link":  `check output directory: output_directory: "link" leads out of the workspace through the symbolic link link (→ ` + outside + `): outputs go inside the workspace, such as "output/link"`,
		".":     `check output directory: output_directory: "." is the workspace itself: outputs go in a directory inside it, such as "output/web"`,
		"..":    `check output directory: output_directory: ".." leads out of the workspace through "..": outputs go inside the workspace, such as "output/.."`,
	} {
		s := strMap("output_directory", dir)
		s.Set("force", value.Bool(true))
		job, _ := newJob(t, s)
		job.Workspace = ws
		_, err := runJob(t, job)
		if err == nil || err.Error() != want {
			t.Errorf("output_directory %q: err = %v\nwant %s", dir, err, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(outside, "precious")); err != nil || string(b) != "keep" {
		t.Errorf("the directory outside the workspace was touched: %q, %v", b, err)
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

// anEarlierRun leaves the build's own output/web holding old.
func anEarlierRun(t *testing.T) *engine.Job {
	t.Helper()
	s := value.NewMap()
	s.Set("files", strMap("old", "old"))
	job, _ := newJob(t, s)
	if _, err := runJob(t, job); err != nil {
		t.Fatal(err)
	}
	return job
}

func TestBuildCopiesWhenTheScratchDirectoryIsOnAnotherFileSystem(t *testing.T) {
	earlier := anEarlierRun(t)
	defer func(f func(*output.Set, string, string, string) (string, error)) { placeScratch = f }(placeScratch)
	placeScratch = func(*output.Set, string, string, string) (string, error) {
		return "", &os.LinkError{Op: "rename", Err: syscall.EXDEV}
	}
	s := value.NewMap()
	s.Set("files", strMap("bin/tool", "#!/bin/sh", "etc/conf", "x"))
	job := again(t, earlier, s)
	art, err := runJob(t, job)
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

func TestAFailedMoveLeavesThePreviousOutputInPlace(t *testing.T) {
	earlier := anEarlierRun(t)
	defer func(f func(*output.Set, string, string, string) (string, error)) { placeScratch = f }(placeScratch)
	placeScratch = func(*output.Set, string, string, string) (string, error) {
		return "", &os.LinkError{Op: "rename", Err: syscall.EACCES}
	}
	job := again(t, earlier, value.NewMap())
	_, err := runJob(t, job)
	if err == nil || !strings.HasPrefix(err.Error(), "move to output directory: rename ") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(job.Workspace, "output/web/old")); string(b) != "old" {
		t.Error("the previous output directory is gone")
	}
	if entries, _ := os.ReadDir(filepath.Join(job.Workspace, "output")); len(entries) != 1 {
		t.Errorf("output/ holds %v", entries)
	}
	if entries, _ := os.ReadDir(job.WorkDir); len(entries) != 0 {
		t.Errorf("the scratch directory is left: %v", entries)
	}
}
