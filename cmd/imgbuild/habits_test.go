package main

import (
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

func TestNoColorIsAcceptedByEveryCommand(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": "local(name = \"a\")\n"})
	for _, args := range [][]string{
		{"validate", "images.star"}, {"plan", "images.star"}, {"run", "images.star"},
		{"fmt", "--check", "images.star"}, {"docs", "shell"}, {"version"}, {"completion", "bash"},
	} {
		for _, at := range []string{"command", "imgbuild"} {
			a := append(append([]string(nil), args...), "--no-color")
			if at == "imgbuild" {
				a = append([]string{"--no-color"}, args...)
			}
			code, out, errOut := imgbuild(t, dir, a...)
			if code != 0 {
				t.Errorf("imgbuild %s: exit %d\n%s%s", strings.Join(a, " "), code, out, errOut)
			}
			if strings.Contains(out, "\x1b[") {
				t.Errorf("imgbuild %s printed an escape sequence:\n%q", strings.Join(a, " "), out)
			}
		}
	}
}

func TestVersionFlagPrintsVersionCommitGoAndDrivers(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, out, _ := imgbuild(t, t.TempDir(), args...)
		if code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
		for _, want := range []string{"imgbuild ", "\ncommit: ", "\ngo:              go1.", "builders:        amazon_ebs, local, null", "provisioners:    ", "file, ", "shell, shell_local", "post-processors: checksum, disk_image, manifest, oci_image, ova, vagrant_box", "lookups:         aws_ami"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v lacks %q:\n%s", args, want, out)
			}
		}
	}
}

func TestMistypedCommandGetsDidYouMean(t *testing.T) {
	code, _, errOut := imgbuild(t, t.TempDir(), "valdate", "images.star")
	if code != 2 || !strings.Contains(errOut, `imgbuild has no command "valdate" (did you mean "validate"?)`) {
		t.Errorf("exit %d: %s", code, errOut)
	}
	code, _, errOut = imgbuild(t, t.TempDir(), "xyzzy")
	if code != 2 || !strings.Contains(errOut, `imgbuild has no command "xyzzy"; run imgbuild help for the list`) {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

func TestRunHelpSaysEachDefaultOnce(t *testing.T) {
	code, out, _ := imgbuild(t, t.TempDir(), "run", "--help")
	if code != 0 {
		t.Fatal(out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Count(l, "(default:") > 1 || strings.Contains(l, "(default: false)") {
			t.Errorf("help line says its default twice or says false: %q", l)
		}
	}
	for _, want := range []string{"--fail-fast", "(default: builds that do not depend on it go on)", "--parallel value", "(default: 8)"} {
		if !strings.Contains(out, want) {
			t.Errorf("run --help lacks %q:\n%s", want, out)
		}
	}
}

func TestCompletionOffersFlagsAfterDashes(t *testing.T) {
	cases := []struct {
		args          []string
		want, notWant []string
	}{
		{[]string{"run", "--"}, []string{"--parallel", "--fail-fast", "--var", "--no-color"}, []string{"validate"}},
		{[]string{"run", "-"}, []string{"--parallel"}, nil},
		{[]string{"run", "images.star", "--o"}, []string{"--only", "--on-error"}, []string{"--parallel"}},
		{[]string{"plan", "--var", "x=1", "--"}, []string{"--json", "--var-file"}, []string{"--parallel"}},
		{nil, []string{"validate", "plan", "run"}, []string{"--"}},
		{[]string{"docs"}, []string{"shell", "amazon_ebs"}, nil},
		{[]string{"mod"}, []string{"download", "update", "graph", "why", "verify", "vendor"}, []string{"validate"}},
		{[]string{"mod", "download", "--"}, []string{"--locked", "--no-color"}, []string{"--var"}},
		{[]string{"ci"}, []string{"github", "gitlab"}, nil},
		{[]string{"ci", "github", "--"}, []string{"--runs-on", "--var"}, nil},
	}
	for _, c := range cases {
		_, out, _ := imgbuild(t, t.TempDir(), append(c.args, completeFlag)...)
		lines := strings.Split(out, "\n")
		has := func(s string) bool {
			for _, l := range lines {
				if l == s {
					return true
				}
			}
			return false
		}
		for _, w := range c.want {
			if !has(w) {
				t.Errorf("completing %v: no %q in\n%s", c.args, w, out)
			}
		}
		for _, w := range c.notWant {
			if has(w) {
				t.Errorf("completing %v: %q offered\n%s", c.args, w, out)
			}
		}
	}
}

func TestRunDirReadsImagesStarOrListsTheDescriptions(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"proj/images.star": `local(name = "a")`, "other/web.star": `local(name = "w")`, "other/db.star": `local(name = "d")`, "empty/x.txt": ""})
	code, out, errOut := imgbuild(t, dir, "run", "proj", "--no-color")
	if code != 0 || !strings.Contains(out, "1 build: 1 succeeded") {
		t.Errorf("run proj: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = imgbuild(t, dir, "validate", "other")
	if code != 2 || !strings.Contains(errOut, "other is a directory without images.star; name one of its descriptions: db.star, web.star") {
		t.Errorf("validate other: exit %d: %s", code, errOut)
	}
	code, _, errOut = imgbuild(t, dir, "plan", "empty")
	if code != 2 || !strings.Contains(errOut, "empty is a directory without images.star, and it holds no .star file") {
		t.Errorf("plan empty: exit %d: %s", code, errOut)
	}
}

func TestExceptOfANeededBuildSaysWhoNeedsIt(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
base = local(name = "base")
local(name = "web", env = {"B": base.id})
local(name = "api", env = {"B": base.id})
local(name = "db")
`})
	code, _, errOut := imgbuild(t, dir, "plan", "images.star", "--except", "base")
	if code != 2 || !strings.Contains(errOut, `--except "base": "web" and "api" need it; leave it in, or skip those builds too`) {
		t.Errorf("exit %d: %s", code, errOut)
	}
	if code, out, errOut := imgbuild(t, dir, "plan", "images.star", "--except", "base,web,api"); code != 0 || !strings.Contains(out, "db") {
		t.Errorf("except base and its dependents: exit %d %s%s", code, out, errOut)
	}
	code, _, errOut = imgbuild(t, dir, "run", "images.star", "--except", "*")
	if code != 2 || !strings.Contains(errOut, "nothing to build: the selection leaves out every build (builds: base, web, api, db)") {
		t.Errorf("--except '*': exit %d: %s", code, errOut)
	}
}

func TestIMGBUILDLogDebugWritesTheInternalLogToStderr(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `local(name = "a", provisioners = [shell(inline = ["echo hi"])])`})
	t.Setenv("IMGBUILD_LOG", "debug")
	code, out, errOut := imgbuild(t, dir, "run", "images.star", "--no-color")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"level=DEBUG msg=\"debug log on\"", "msg=\"description loaded\"", "msg=event type=step_started build=a", "message=hi"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(out, "level=DEBUG") {
		t.Error("the debug log went to stdout")
	}
	t.Setenv("IMGBUILD_LOG", "loud")
	_, _, errOut = imgbuild(t, dir, "validate", "images.star")
	if !strings.Contains(errOut, `warning: IMGBUILD_LOG="loud": want debug, info, warn or error`) || strings.Contains(errOut, "level=DEBUG") {
		t.Errorf("bad IMGBUILD_LOG: %s", errOut)
	}
}
