package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// imageTestsWorkspace has a local() build whose tests pass or fail as the
// variable fail says, a build that consumes it, and a manifest.
const imageTestsDescription = `
fail = var("fail", default = "no")

web = local(
    name = "web",
    provisioners = [shell(inline = ["mkdir -p $IMGBUILD_ROOT/etc", "echo nginx > $IMGBUILD_ROOT/etc/served"])],
    tests = [
        shell(name = "the site is served", inline = ["grep -q nginx $IMGBUILD_ROOT/etc/served", "echo site ok"]),
        shell(inline = ["echo checking the second thing", "test " + fail + " = no || { echo 'second check broke' >&2; exit 3; }"]),
    ],
    post = [manifest(output = "manifest.json")],
)

local(name = "app", depends_on = [web], provisioners = [shell(inline = ["true"])])
`

func TestTestsThatPassPublishTheImageAndAreReported(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": imageTestsDescription})
	junit := filepath.Join(t.TempDir(), "results.xml")
	code, out, _ := imgbuild(t, dir, "run", "images.star", "--no-color", "--junit", junit)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{"==> test", `test "the site is served" passed`, `test "shell (echo checking the second thing)" passed`, "all 2 tests passed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "output/web/etc/served")); err != nil {
		t.Errorf("the tested directory was not published: %v", err)
	}
	var man struct {
		Builds []struct {
			Name        string `json:"name"`
			Fingerprint string `json:"fingerprint"`
			Tests       []struct {
				Name, Status string
				Output       []string `json:"output_tail"`
			} `json:"tests"`
		} `json:"builds"`
	}
	data := readJSON(t, filepath.Join(dir, "manifest.json"), &man)
	if len(man.Builds) != 1 || len(man.Builds[0].Tests) != 2 {
		t.Fatalf("manifest: %s", data)
	}
	b := man.Builds[0]
	if b.Fingerprint == "" {
		t.Errorf("the manifest records no input fingerprint: %s", data)
	}
	if tt := b.Tests[0]; tt.Name != "the site is served" || tt.Status != "passed" || len(tt.Output) == 0 || tt.Output[len(tt.Output)-1] != "site ok" {
		t.Errorf("first test in the manifest: %+v", tt)
	}
	suites := readJUnit(t, junit)
	if len(suites.Suites) != 1 || suites.Tests != 2 || suites.Failures != 0 || suites.Suites[0].Cases[0].Name != "the site is served" {
		t.Errorf("JUnit: %+v", suites)
	}

	_, plan, _ := imgbuild(t, dir, "plan", "images.star")
	for _, want := range []string{"tests (on a machine launched from the new image, before it is published):", "1. the site is served: shell(", "2. shell (echo checking the second thing): shell("} {
		if !strings.Contains(plan, want) {
			t.Errorf("the plan lacks %q:\n%s", want, plan)
		}
	}
}

func TestAFailedTestPublishesNothingAndSkipsDependents(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": imageTestsDescription})
	junit := filepath.Join(t.TempDir(), "results.xml")
	code, out, _ := imgbuild(t, dir, "run", "images.star", "--no-color", "--var", "fail=yes", "--junit", junit)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{`test "shell (echo checking the second thing)" FAILED`, "exited with status 3", "second check broke", `it needs "web", which failed`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, p := range []string{"output/web", "output/app", "manifest.json"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s was published although a test failed", p)
		}
	}
	suites := readJUnit(t, junit)
	if suites.Tests != 2 || suites.Failures != 1 {
		t.Fatalf("JUnit: %+v", suites)
	}
	f := suites.Suites[0].Cases[1].Failure
	if f == nil || !strings.Contains(f.Text, "second check broke") || !strings.Contains(f.Message, "exited with status 3") {
		t.Errorf("JUnit failure: %+v", f)
	}

	// --json: every test has its events.
	_, jsonOut, _ := imgbuild(t, dir, "run", "images.star", "--json", "--var", "fail=yes", "--only", "web")
	var started, finished []map[string]any
	for _, l := range strings.Split(jsonOut, "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(l), &e) != nil {
			continue
		}
		switch e["type"] {
		case "test_started":
			started = append(started, e)
		case "test_finished":
			finished = append(finished, e)
		}
	}
	if len(started) != 2 || len(finished) != 2 || finished[0]["status"] != "passed" || finished[1]["status"] != "failed" || finished[1]["error"] == nil {
		t.Errorf("test events: started %v, finished %v", started, finished)
	}
}

func TestATestThatTakesTooLongFailsWithItsTimeout(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
local(name = "slow", tests = [shell(name = "hangs", inline = ["sleep 30"], timeout = "1s")])
`})
	code, out, _ := imgbuild(t, dir, "run", "images.star", "--no-color")
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if !strings.Contains(out, `test "hangs" FAILED`) || !strings.Contains(out, `timed out after 1s (its timeout = "1s")`) {
		t.Errorf("output does not say the test timed out:\n%s", out)
	}
	_, docs, _ := imgbuild(t, dir, "docs", "local")
	if !strings.Contains(docs, "timeout (default 10m0s)") {
		t.Errorf("docs do not show the default timeout of a test:\n%s", docs)
	}
}

type junitReport struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Suites   []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, path string) junitReport {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r junitReport
	if err := xml.Unmarshal(data, &r); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return r
}
