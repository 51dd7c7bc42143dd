package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// planWorkspace has three builds: base runs a script, web consumes base
// and reads a sensitive variable and the run's timestamp, other stands
// alone; lib.star is loaded.
func planWorkspace(t *testing.T) string {
	return testkit.Workspace(t, map[string]string{
		"scripts/a.sh": "echo from a.sh > made\n",
		"lib.star":     "SUFFIX = \"-x\"\n",
		"vars.json":    `{"region": "eu-west-1"}`,
		"images.star": `load("//lib.star", "SUFFIX")
token = var("token", default = "the-default-secret", sensitive = True)
ver = var("version", default = "1")
region = var("region", default = "us-east-1")
base = local(name = "base", provisioners = [shell(script = "scripts/a.sh")])
local(name = "web", env = {"FROM": base.id, "TOKEN": token, "AT": timestamp(), "V": ver + SUFFIX, "R": region},
      provisioners = [shell(inline = ["echo $V $R > seen"])])
local(name = "other")
`,
	})
}

// binaryIn runs the imgbuild binary in dir with env added to this
// process's, and returns its exit code, stdout and stderr.
func binaryIn(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, append(args, "--no-color")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := exitStatus(t, cmd.Run())
	return code, stdout.String(), stderr.String()
}

// mustSavePlan runs imgbuild plan -out and fails the test unless it works.
func mustSavePlan(t *testing.T, dir, out string, args ...string) {
	t.Helper()
	code, stdout, stderr := binaryIn(t, dir, nil, append([]string{"plan", "images.star", "-out", out}, args...)...)
	if code != 0 {
		t.Fatalf("plan -out exited %d:\n%s%s", code, stdout, stderr)
	}
	wantIn(t, "plan -out", stdout, "Saved the plan to "+out+": imgbuild run "+out+" runs exactly it")
}

// wantRefused runs imgbuild run PLAN and checks that it exits 2 saying
// each of wants, having built nothing (no output directory where there
// was none).
func wantRefused(t *testing.T, dir string, env []string, args []string, wants ...string) {
	t.Helper()
	_, before := os.Stat(filepath.Join(dir, "output"))
	code, stdout, stderr := binaryIn(t, dir, env, append([]string{"run"}, args...)...)
	if code != 2 {
		t.Fatalf("run %s: exit %d, want 2\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
	wantIn(t, "run "+strings.Join(args, " "), stderr, wants...)
	if _, err := os.Stat(filepath.Join(dir, "output")); err == nil && before != nil {
		t.Errorf("run %s was refused but built something", strings.Join(args, " "))
	}
}

// forgetRuns removes what runs built and their records.
func forgetRuns(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{"output", ".imgbuild"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestASavedPlanRunsExactlyItsBuilds(t *testing.T) {
	dir := planWorkspace(t)
	// Saved in a directory of its own, under a name that is not .json:
	// run finds the description relative to the plan, and tells a plan
	// by its content.
	if err := os.Mkdir(filepath.Join(dir, "plans"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustSavePlan(t, dir, "plans/release.plan", "--except", "other", "--var-file", "vars.json", "--var", "version=2")
	code, out, errs := binaryIn(t, filepath.Join(dir, "plans"), nil, "run", "release.plan")
	if code != 0 {
		t.Fatalf("run exited %d:\n%s%s", code, out, errs)
	}
	wantIn(t, "run release.plan", out, "running the plan in release.plan, made ", ": 2 builds (base, web)", "| base  | local  | succeeded", "| web   | local  | succeeded", "2 builds: 2 succeeded")
	if strings.Contains(out, "other") {
		t.Errorf("run of a plan made with --except other ran other:\n%s", out)
	}
	// The plan's --var and var file were used: web saw version 2 and the
	// var file's region.
	seen, err := os.ReadFile(filepath.Join(dir, "output", "web", "seen"))
	if err != nil || string(seen) != "2-x eu-west-1\n" {
		t.Errorf("web saw %q (%v), want the plan's version and var file's region", seen, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "output", "other")); err == nil {
		t.Error("output/other exists: the plan's excepted build was built")
	}

	// Run once, a plan is stale: what it was to build is built.
	wantRefused(t, dir, nil, []string{"plans/release.plan"}, `build "base" was to be built (new) and is up to date now: a run built it since`)
	// With the builds' records gone, the same flags again are accepted;
	// others are refused, saying which and what to do.
	forgetRuns(t, dir)
	code, out, errs = binaryIn(t, dir, nil, "run", "plans/release.plan", "--except", "other", "--var", "version=2", "--var-file", "vars.json")
	if code != 0 {
		t.Fatalf("run with the plan's own flags exited %d:\n%s%s", code, out, errs)
	}
	os.RemoveAll(filepath.Join(dir, "output"))
	again := "make the plan again with imgbuild plan -out plans/release.plan images.star"
	wantRefused(t, dir, nil, []string{"plans/release.plan", "--only", "base"}, "--only given to run with a plan that differs from the plan's", "it was made without --only; drop --only, or "+again+" --only ...")
	wantRefused(t, dir, nil, []string{"plans/release.plan", "--except", "web"}, "it was made with --except other; drop --except")
	wantRefused(t, dir, nil, []string{"plans/release.plan", "--var-file", "plans/release.plan"}, "--var-file given to run with a plan that differs", "it was made with --var-file vars.json")
	wantRefused(t, dir, nil, []string{"plans/release.plan", "--var", "version=3"}, "--var version: not the value the plan in plans/release.plan was made with: a plan runs with its own values, so drop --var version (or "+again+" with the new value)")
	wantRefused(t, dir, nil, []string{"plans/release.plan", "--var", "region=x"}, "--var region: the plan in plans/release.plan was made without it")
}

func TestASavedPlanIsRefusedWhenTheDescriptionChanged(t *testing.T) {
	dir := planWorkspace(t)
	mustSavePlan(t, dir, "plan.json")
	testkit.WriteFile(t, filepath.Join(dir, "lib.star"), "SUFFIX = \"-y\"\n")
	wantRefused(t, dir, nil, []string{"plan.json"},
		"error: the plan in plan.json (made ", ") no longer holds; since it was made:\n  description file lib.star changed\n",
		`build "web": setting env changed`,
		"to build what the description says now, make the plan again with imgbuild plan -out plan.json images.star, look at what it shows, and run that plan")

	testkit.WriteFile(t, filepath.Join(dir, "lib.star"), "SUFFIX = \"-x\"\n")
	src, _ := os.ReadFile(filepath.Join(dir, "images.star"))
	testkit.WriteFile(t, filepath.Join(dir, "images.star"), string(src)+"local(name = \"late\")\n")
	wantRefused(t, dir, nil, []string{"plan.json"}, "  description file images.star changed\n", `  build "late" was added`)
	testkit.WriteFile(t, filepath.Join(dir, "images.star"), strings.Replace(string(src), "local(name = \"other\")\n", "", 1))
	wantRefused(t, dir, nil, []string{"plan.json"}, `  build "other" was removed (or is no longer selected)`)
	// A change that touches no build (a comment) still changes the
	// description the plan was made from.
	testkit.WriteFile(t, filepath.Join(dir, "images.star"), string(src)+"# reviewed\n")
	wantRefused(t, dir, nil, []string{"plan.json"}, "  description file images.star changed\nto build")
}

func TestASavedPlanIsRefusedWhenAnInputFileChanged(t *testing.T) {
	dir := planWorkspace(t)
	mustSavePlan(t, dir, "plan.json")
	testkit.WriteFile(t, filepath.Join(dir, "scripts", "a.sh"), "echo changed\n")
	wantRefused(t, dir, nil, []string{"plan.json"}, "since it was made:\n  build \"base\": input file scripts/a.sh changed\nto build")

	mustSavePlan(t, dir, "plan.json", "--var-file", "vars.json")
	testkit.WriteFile(t, filepath.Join(dir, "vars.json"), `{"region": "eu-central-1"}`)
	wantRefused(t, dir, nil, []string{"plan.json"}, "  var file vars.json changed\n", `  variable "region" changed: "eu-west-1" when planned, "eu-central-1" now (from vars.json)`)
}

func TestASavedPlanIsRefusedWhenAVariableChanged(t *testing.T) {
	dir := planWorkspace(t)
	code, out, errs := binaryIn(t, dir, []string{"IMGBUILD_VAR_version=5"}, "plan", "images.star", "-out", "plan.json")
	if code != 0 {
		t.Fatalf("plan exited %d:\n%s%s", code, out, errs)
	}
	wantRefused(t, dir, []string{"IMGBUILD_VAR_version=6"}, []string{"plan.json"}, `  variable "version" changed: "5" when planned, "6" now (from $IMGBUILD_VAR_version)`)
	wantRefused(t, dir, nil, []string{"plan.json"}, `  variable "version" changed: "5" when planned, "1" now (from its default)`)
	wantRefused(t, dir, []string{"IMGBUILD_VAR_version=5"}, []string{"plan.json", "--var", "version=5"}, "--var version: the plan in plan.json was made without it")
	if code, out, errs := binaryIn(t, dir, []string{"IMGBUILD_VAR_version=5"}, "run", "plan.json"); code != 0 {
		t.Fatalf("run with the planned environment exited %d:\n%s%s", code, out, errs)
	}
}

func TestASavedPlanNeverHoldsASensitiveValue(t *testing.T) {
	dir := planWorkspace(t)
	const secret = "hunter2-never-in-the-plan"
	mustSavePlan(t, dir, "plan.json", "--var", "token="+secret)
	data, err := os.ReadFile(filepath.Join(dir, "plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{secret, "the-default-secret", "hunter2"} {
		if strings.Contains(string(data), leak) {
			t.Errorf("the plan file holds %q:\n%s", leak, data)
		}
	}
	wantIn(t, "plan.json", string(data), `"name": "token"`, `"value": "(sensitive)"`, `"hash": "hmac:`, `"deferred": [`, `"format": "imgbuild-plan"`, `"version": 1`)
	// Not in the plan, so it must be given again; a wrong one is refused.
	wantRefused(t, dir, nil, []string{"plan.json"}, `variable "token" (sensitive) is not the plan's value: the plan holds only its digest, so give it as when planning (--var token=... or IMGBUILD_VAR_token)`)
	wantRefused(t, dir, nil, []string{"plan.json", "--var", "token=guess"}, "--var token: not the value the plan in plan.json was made with")
	if code, out, errs := binaryIn(t, dir, []string{"IMGBUILD_VAR_token=" + secret}, "run", "plan.json"); code != 0 {
		t.Fatalf("run with the secret in the environment exited %d:\n%s%s", code, out, errs)
	}
	forgetRuns(t, dir)
	code, out, errs := binaryIn(t, dir, nil, "run", "plan.json", "--var", "token="+secret)
	if code != 0 {
		t.Fatalf("run with the secret given again exited %d:\n%s%s", code, out, errs)
	}
	if strings.Contains(out+errs, secret) {
		t.Errorf("the run printed the secret:\n%s%s", out, errs)
	}
}

func TestASavedPlanIsRefusedWhenTheStateChanged(t *testing.T) {
	dir := planWorkspace(t)
	mustSavePlan(t, dir, "plan.json")
	if code, out, errs := binaryIn(t, dir, nil, "run", "images.star", "--only", "base"); code != 0 {
		t.Fatalf("run --only base exited %d:\n%s%s", code, out, errs)
	}
	code, out, errs := binaryIn(t, dir, nil, "run", "plan.json")
	if code != 2 {
		t.Fatalf("run of a plan whose base was built since: exit %d\n%s%s", code, out, errs)
	}
	wantIn(t, "run plan.json", errs, "no longer holds; the builds' records (the state) changed since:\n  build \"base\" was to be built (new) and is up to date now: a run built it since\nto see what a run does now, make the plan again with imgbuild plan -out plan.json images.star")

	mustSavePlan(t, dir, "plan.json")
	data, _ := os.ReadFile(filepath.Join(dir, "plan.json"))
	wantIn(t, "plan.json", string(data), `"mark": "up to date"`)
	os.Remove(filepath.Join(dir, "output", "base", "made"))
	code, out, errs = binaryIn(t, dir, nil, "run", "plan.json")
	if code != 2 {
		t.Fatalf("run of a plan whose base's artifact is gone: exit %d\n%s%s", code, out, errs)
	}
	wantIn(t, "run plan.json", errs, `  build "base" was up to date when planned and would be rebuilt now: artifact is gone`)
}

func TestBadPlanFilesSayWhatIsWrong(t *testing.T) {
	dir := planWorkspace(t)
	mustSavePlan(t, dir, "plan.json")
	good, _ := os.ReadFile(filepath.Join(dir, "plan.json"))
	for _, c := range []struct {
		name, content string
		want          []string
	}{
		{"truncated.json", string(good[:len(good)/2]), []string{"truncated.json is neither a description nor a plan imgbuild can read: invalid JSON at line ", "unexpected end of JSON input; save the plan again with imgbuild plan -out truncated.json DESCRIPTION"}},
		{"broken", "{\"format\": \"imgbuild-plan\",, }", []string{"broken is neither a description nor a plan imgbuild can read: invalid JSON at line 1, column 29: invalid character ','"}},
		{"foreign.json", `{"name": "a package.json, say"}`, []string{`foreign.json is JSON but not an imgbuild plan (it has no "format": "imgbuild-plan"): give a description (.star), a directory holding images.star, or a plan saved by imgbuild plan -out`}},
		{"list.json", `[1, 2]`, []string{"list.json is JSON but not an imgbuild plan"}},
		{"empty.json", ``, []string{"empty.json is neither a description nor a plan imgbuild can read: invalid JSON: unexpected end of JSON input"}},
		{"v2.json", strings.Replace(string(good), `"version": 1,`, `"version": 2,`, 1), []string{"v2.json: a plan of format version 2, written by imgbuild " + testVersion + "; this imgbuild reads version 1: make the plan again with imgbuild plan -out v2.json DESCRIPTION"}},
		{"noversion.json", `{"format": "imgbuild-plan"}`, []string{"noversion.json: a plan of format version ; this imgbuild reads version 1"}},
		{"typed.json", strings.Replace(string(good), `"builds": [`, `"builds": 7, "x": [`, 1), []string{"typed.json: line ", "builds is a JSON number where a plan has a list"}},
		{"unknown.json", strings.Replace(string(good), `"format"`, `"surprise": 1, "format"`, 1), []string{`unknown.json: json: unknown field "surprise"`}},
		{"nodesc.json", strings.Replace(string(good), `"description": "images.star"`, `"description": ""`, 1), []string{`nodesc.json: it names no description ("description" is empty)`}},
		{"gone.json", strings.Replace(string(good), `"description": "images.star"`, `"description": "gone.star"`, 1), []string{"the plan in gone.json is of the description gone.star, which cannot be read"}},
	} {
		testkit.WriteFile(t, filepath.Join(dir, c.name), c.content)
		wantRefused(t, dir, nil, []string{c.name}, c.want...)
	}
	// validate and plan take descriptions and say what to do with a plan.
	for _, cmd := range []string{"validate", "plan"} {
		code, _, errs := binaryIn(t, dir, nil, cmd, "plan.json")
		if code != 2 || !strings.Contains(errs, "plan.json is a plan saved by imgbuild plan -out: run it with imgbuild run plan.json ("+cmd+" takes a description)") {
			t.Errorf("%s plan.json: exit %d: %s", cmd, code, errs)
		}
	}
}

func TestDocsPlanFileSaysWhatIsComparedAndHeld(t *testing.T) {
	code, out, _ := binaryIn(t, t.TempDir(), nil, "docs", "plan-file")
	if code != 0 {
		t.Fatalf("docs plan-file: exit %d", code)
	}
	wantIn(t, "docs plan-file", out, "imgbuild plan FILE -out PLAN, then imgbuild run PLAN", "a keyed digest", `"imgbuild-plan", 1: another version is refused`, "deferred")
	_, index, _ := binaryIn(t, t.TempDir(), nil, "docs")
	wantIn(t, "docs", index, "imgbuild docs plan-file")
}

func TestPlanJSONWithOutKeepsStdoutJSON(t *testing.T) {
	dir := planWorkspace(t)
	code, out, errs := binaryIn(t, dir, nil, "plan", "images.star", "--json", "-out", "plan.json")
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(out), "{") || strings.Contains(out, "Saved the plan") || !strings.Contains(errs, "Saved the plan to plan.json") {
		t.Errorf("plan --json -out: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}
