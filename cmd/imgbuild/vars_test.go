package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// TestVarValuesAreNeverSplitOnCommas pins down that --var takes its value
// whole: a JSON list for a list variable, a plain string holding commas,
// and a sensitive value with a comma, which must never be half-printed.
func TestVarValuesAreNeverSplitOnCommas(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
regions = var("regions", default = ["eu-west-1"])
greeting = var("greeting", default = "hi")
token = var("token", sensitive = True)
local(name = "a", env = {"R": ",".join(regions), "G": greeting, "T": token})
`})
	code, out, errOut := imgbuild(t, dir, "plan", "images.star",
		"--var", `regions=["eu-west-1","us-east-1"]`,
		"--var", "greeting=hello, world",
		"--var", "token=Zq7-first,Zq7-second")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{`"R": "eu-west-1,us-east-1"`, `"G": "hello, world"`, `"T": (sensitive)`} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, "Zq7") {
		t.Errorf("the plan shows part of the secret:\n%s%s", out, errOut)
	}
}

func TestPackerVarFileOnTheCommandLine(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{
		"images.star": `
region = var("region", env = "IMGBUILD_TEST_REGION", default = "us-east-1")
debug = var("debug", type = "bool", default = True)
local(name = "web", env = {"REGION": region, "DEBUG": str(debug)})
`,
		"prod.pkrvars.hcl": "debug = \"false\"\nvpc_id = \"vpc-1\"\n",
		"bad.pkrvars.hcl":  "debug = \"maybe\"\n",
	})
	t.Setenv("IMGBUILD_TEST_REGION", "eu-central-1")
	code, out, errOut := imgbuild(t, dir, "plan", "images.star", "--var-file", "prod.pkrvars.hcl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{`env = {"REGION": "eu-central-1", "DEBUG": "False"}`, `region = "eu-central-1"  ($IMGBUILD_TEST_REGION)`, `debug = False`} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if want := `warning: prod.pkrvars.hcl:2:1: variable "vpc_id" is not declared in the description; it is ignored (--strict-vars makes this an error)`; !strings.Contains(errOut, want) {
		t.Errorf("stderr lacks %q:\n%s", want, errOut)
	}
	code, _, errOut = imgbuild(t, dir, "validate", "--strict-vars", "--var-file", "prod.pkrvars.hcl", "images.star")
	if want := `error: prod.pkrvars.hcl:2:1: variable "vpc_id" is not declared in the description; declared: region, debug`; code != exitInvalid || !strings.Contains(errOut, want) {
		t.Errorf("--strict-vars: exit %d, stderr %q; want exit 2 and %q", code, errOut, want)
	}
	code, _, errOut = imgbuild(t, dir, "validate", "--var-file", "bad.pkrvars.hcl", "images.star")
	if want := `var: bad.pkrvars.hcl:1:1: variable "debug": "maybe" is not a bool (the variable is declared bool): write true or false`; code != exitInvalid || !strings.Contains(errOut, want) {
		t.Errorf("bad value: exit %d, stderr %q; want exit 2 and %q", code, errOut, want)
	}
}

func TestRunValuesAreTheSameForEveryBuildAndLeaveTheFingerprintAlone(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
stamp = "base-" + timestamp().format("YYYYMMDDhhmmss")
local(name = "a", files = {"stamp": stamp, "run": run_id()})
local(name = "b", files = {"stamp": stamp}, provisioners = [shell(inline = ["echo " + timestamp() + " > when"])])
`})
	code, out, errOut := imgbuild(t, dir, "plan", "images.star")
	if want := `files = {"stamp": "base-" + (at run: timestamp.format("YYYYMMDDhhmmss")), "run": (at run: run_id)}`; code != 0 || !strings.Contains(out, want) {
		t.Fatalf("plan: exit %d, lacks %s:\n%s%s", code, want, out, errOut)
	}
	fingerprints := func() string {
		state, err := os.ReadFile(filepath.Join(dir, ".imgbuild", "state.json"))
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			Builds map[string]struct{ Fingerprint string }
		}
		if err := json.Unmarshal(state, &s); err != nil {
			t.Fatal(err)
		}
		return s.Builds["a"].Fingerprint + " " + s.Builds["b"].Fingerprint
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	var first string
	for i := 0; i < 2; i++ {
		if code, out, errOut := imgbuild(t, dir, "run", "--no-color", "images.star"); code != 0 && i == 0 {
			t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
		}
		a, b := read("output/a/stamp"), read("output/b/stamp")
		if a != b || !regexp.MustCompile(`^base-\d{14}$`).MatchString(a) {
			t.Errorf("stamps %q and %q, want one base-YYYYMMDDhhmmss for both builds", a, b)
		}
		if _, err := os.Stat(filepath.Join(dir, ".imgbuild", "logs", read("output/a/run"))); err != nil {
			t.Errorf("run_id() %q does not name the run's logs: %v", read("output/a/run"), err)
		}
		if i == 0 {
			first = fingerprints()
			os.RemoveAll(filepath.Join(dir, "output"))
		} else if fp := fingerprints(); fp != first {
			t.Errorf("fingerprints changed from one run to the next: %s, then %s", first, fp)
		}
	}
}
