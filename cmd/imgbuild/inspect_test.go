package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/stdlib"
)

const inspected = `
token = var("token", sensitive = True, default = "hunter2-secret")
version = var("version", default = "dev", description = "The release.")
base = local(name = "base", env = {"T": token})
local(name = "web", env = {"B": base.id}, provisioners = [shell(inline = ["true"])], post = [manifest(output = "output/m.json")])
`

func TestInspectShowsVariablesBuildsOutputsAndWhatEachConsumes(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": inspected})
	code, out, errOut := imgbuild(t, dir, "inspect", "images.star")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"token = (sensitive)", `version = "dev"  # The release.`,
		"  base (local) at images.star:4:13", "    outputs:  id, files, name, directory", "    consumes: nothing",
		"  web (local) at images.star:5:6", "    consumes: env.B ← base.id", "provisioners:    shell", "post-processors: manifest",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("inspect shows the secret:\n%s", out)
	}
	_, out, _ = imgbuild(t, dir, "inspect", "images.star", "--json")
	var in struct {
		Variables []struct{ Name, Value string }
		Builds    []struct {
			Name     string
			Outputs  []string
			Consumes []struct{ From, To, Via string }
		}
	}
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatal(err)
	}
	if len(in.Variables) != 2 || in.Variables[0].Value != "(sensitive)" || len(in.Builds) != 2 || in.Builds[1].Consumes[0].From != "base" {
		t.Errorf("inspect --json: %+v", in)
	}
}

func TestPlanJSONIncludesVariablesWithSecretsHidden(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": inspected})
	code, out, _ := imgbuild(t, dir, "plan", "images.star", "--json", "--var", "version=1.2")
	if code != 0 {
		t.Fatal(out)
	}
	var plan struct {
		Variables []struct {
			Name, Value, Source string
			Sensitive           bool
		}
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatal(err)
	}
	if len(plan.Variables) != 2 || plan.Variables[0].Value != "(sensitive)" || !plan.Variables[0].Sensitive || plan.Variables[1].Value != `"1.2"` || plan.Variables[1].Source != "--var" {
		t.Errorf("variables: %+v", plan.Variables)
	}
	if strings.Contains(out, "hunter2") {
		t.Error("plan --json shows the secret")
	}
}

func TestRunJSONReportsUsageErrorsAsAnEvent(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `local(name = "a")`, "bad.star": `local(name = "a", nope = 1)`})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "images.star", "--json", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"run", "bad.star", "--json"}, `bad.star:1:19: local: unexpected keyword argument "nope"`},
		{[]string{"run", "--json", "images.star", "--parallel", "0"}, "--parallel 0: want at least 1"},
	} {
		code, out, _ := imgbuild(t, dir, c.args...)
		var e struct {
			Type, Error string
			ExitCode    int `json:"exit_code"`
		}
		if err := json.Unmarshal([]byte(out), &e); err != nil || code != 2 {
			t.Errorf("%v: exit %d, stdout not one JSON event (%v):\n%s", c.args, code, err, out)
			continue
		}
		if e.Type != "usage_error" || e.ExitCode != 2 || !strings.Contains(e.Error, c.want) {
			t.Errorf("%v: event %+v, want an error with %q", c.args, e, c.want)
		}
	}
}

func TestGitHubActionsGetsErrorAnnotations(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{
		"proj/bad.star":    "local(name = \"a\",\n      nope = 1)\n",
		"proj/broken.star": "local(name = \"web\", provisioners = [shell(inline = [\"exit 3\"])])\n",
	})
	t.Setenv("GITHUB_ACTIONS", "true")
	_, out, _ := imgbuild(t, dir, "validate", "proj/bad.star")
	if !strings.Contains(out, `::error file=proj/bad.star,line=2,col=7::local: unexpected keyword argument "nope"`) {
		t.Errorf("validation annotation:\n%s", out)
	}
	_, out, _ = imgbuild(t, dir, "run", "proj/broken.star", "--no-color")
	if !strings.Contains(out, "::error file=proj/broken.star,line=1,col=6::build web failed: provision: provisioner 1/1: shell at broken.star") {
		t.Errorf("failure annotation:\n%s", out)
	}
	t.Setenv("GITHUB_ACTIONS", "")
	if _, out, _ := imgbuild(t, dir, "validate", "proj/bad.star"); strings.Contains(out, "::error") {
		t.Errorf("annotations outside GitHub Actions:\n%s", out)
	}
}

func TestValidateReportsEveryErrorAtItsKeyword(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
local(
    name = "a",
    provisoners = [],
)
local(name = "b", provisioners = [shell(inlin = ["true"])])
local(name = "c", env = 3)
`})
	code, _, errOut := imgbuild(t, dir, "validate", "images.star")
	if code != 2 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := []string{
		`error: images.star:4:5: local: unexpected keyword argument "provisoners" (did you mean "provisioners"?)`,
		`error: images.star:6:41: shell: unexpected keyword argument "inlin" (did you mean "inline"?)`,
		`error: images.star:7:19: local: for parameter env:`,
		"3 errors",
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != len(want) {
		t.Fatalf("stderr has %d lines, want %d:\n%s", len(lines), len(want), errOut)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want %q", i+1, lines[i], w)
		}
	}
}

func TestDocsCoverTheStandardLibrary(t *testing.T) {
	_, out, _ := imgbuild(t, t.TempDir(), "docs")
	for _, want := range []string{"Standard library", "apt_install ", "(@stdlib//apt.star)", "cleanup_steps "} {
		if !strings.Contains(out, want) {
			t.Errorf("docs lacks %q:\n%s", want, out)
		}
	}
	code, out, _ := imgbuild(t, t.TempDir(), "docs", "apt_install")
	if code != 0 || !strings.Contains(out, "apt_install(packages, update = True") || !strings.Contains(out, `load("@stdlib//apt.star", "apt_install")`) || !strings.Contains(out, "sudo: run through sudo") {
		t.Errorf("docs apt_install: exit %d\n%s", code, out)
	}
	code, out, _ = imgbuild(t, t.TempDir(), "docs", "cleanup.star")
	if code != 0 || !strings.HasPrefix(out, "@stdlib//cleanup.star\n  Image hygiene: ") || !strings.Contains(out, "cleanup(") || !strings.Contains(out, "cleanup_steps(") {
		t.Errorf("docs cleanup.star: exit %d\n%s", code, out)
	}
}

// TestDocsShowEveryStandardLibraryFunction: the index lists each function
// with its module, and docs NAME shows its signature, the load() that
// brings it in and its whole docstring.
func TestDocsShowEveryStandardLibraryFunction(t *testing.T) {
	fns, err := stdlib.Functions()
	if err != nil {
		t.Fatal(err)
	}
	_, index, _ := imgbuild(t, t.TempDir(), "docs")
	for _, f := range fns {
		if !strings.Contains(index, "  "+f.Name+" ") || !strings.Contains(index, "("+f.Module+")") {
			t.Errorf("docs does not list %s of %s", f.Name, f.Module)
		}
		code, out, errOut := imgbuild(t, t.TempDir(), "docs", f.Name)
		if code != 0 || !strings.HasPrefix(out, f.Signature+"\n") || !strings.Contains(out, `load("`+f.Module+`", "`+f.Name+`")`) {
			t.Errorf("docs %s: exit %d\n%s%s", f.Name, code, out, errOut)
		}
		for _, l := range strings.Split(f.Doc, "\n") {
			if !strings.Contains(out, l) {
				t.Errorf("docs %s lacks the docstring's line %q", f.Name, l)
			}
		}
	}
	code, out, _ := imgbuild(t, t.TempDir(), "docs", "sshd_config")
	if code != 0 || !strings.Contains(out, "sshd_config(permit_root_login = \"prohibit-password\",") || !strings.Contains(out, "  permit_root_login: \"prohibit-password\"") {
		t.Errorf("docs sshd_config: exit %d\n%s", code, out)
	}
}
