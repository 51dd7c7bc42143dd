package main

import (
	"io"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"gopkg.in/yaml.v3"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// ciDescription has a diamond and a build name GitHub does not take as a
// job id.
const ciDescription = `
base = local(name = "base")
a = local(name = "web.eu", env = {"X": base.id})
b = local(name = "9db", env = {"X": base.id})
local(name = "all", depends_on = [a, b])
`

func TestCIGithubWritesAWorkflowActionlintAccepts(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": ciDescription})
	code, out, errs := imgbuild(t, dir, "ci", "github", "--state", "s3://bucket/ci", "images.star")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	linter, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	problems, err := linter.Lint(".github/workflows/images.yml", []byte(out), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("actionlint: %s", p.Error())
	}
	var wf struct {
		Env  map[string]string `yaml:"env"`
		Jobs map[string]struct {
			Name  string   `yaml:"name"`
			Needs []string `yaml:"needs"`
			Steps []struct {
				Run string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal([]byte(out), &wf); err != nil {
		t.Fatal(err)
	}
	if wf.Env["IMGBUILD_STATE"] != "s3://bucket/ci" {
		t.Errorf("env: %v", wf.Env)
	}
	want := map[string]string{"base": "", "web_eu": "base", "_9db": "base", "all": "web_eu _9db"}
	for id, needs := range want {
		j, ok := wf.Jobs[id]
		if !ok {
			t.Errorf("no job %s in:\n%s", id, out)
			continue
		}
		if got := strings.Join(j.Needs, " "); got != needs {
			t.Errorf("job %s needs %q, want %q", id, got, needs)
		}
		if run := j.Steps[len(j.Steps)-1].Run; run != `imgbuild run --only `+j.Name+` --state "$IMGBUILD_STATE" images.star` {
			t.Errorf("job %s runs %q", id, run)
		}
	}
}

func TestCIGitlabWritesJobsWithNeeds(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": ciDescription, "imgbuild.mod": `state(location = "s3://bucket/from-mod")`})
	code, out, errs := imgbuild(t, dir, "ci", "gitlab", "images.star")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var p map[string]struct {
		Needs  []string `yaml:"needs"`
		Script []string `yaml:"script"`
	}
	if err := yaml.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p["all"].Needs, " "); got != "web.eu 9db" {
		t.Errorf("all needs %q:\n%s", got, out)
	}
	if !strings.Contains(out, `IMGBUILD_STATE: "s3://bucket/from-mod"`) || p["base"].Needs == nil {
		t.Errorf("pipeline:\n%s", out)
	}
}

func TestCIWithoutSharedStateSaysWhy(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": ciDescription})
	code, _, errs := imgbuild(t, dir, "ci", "github", "images.star")
	if code != exitInvalid || !strings.Contains(errs, "error: ci github: the jobs run on different machines, so they need shared state: give --state s3://bucket/prefix, or state(location = ...) in ") {
		t.Errorf("exit %d: %s", code, errs)
	}
}
