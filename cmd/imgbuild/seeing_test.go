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

func TestSummaryShowsTheRootErrorAndTheCommandsLastLines(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"broken.star": `
local(name = "web", provisioners = [shell(inline = [
    "echo Reading package lists...",
    "echo 'E: Unable to locate package nginx-typo' >&2",
    "exit 100",
])])
`})
	code, out, _ := imgbuild(t, dir, "run", "broken.star", "--no-color")
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	table := out[strings.Index(out, "| BUILD"):]
	for _, want := range []string{"provision: provisioner 1/1: shell at", "broken.star:2:42", "status 100", "|   Reading package lists...", "|   E: Unable to locate package nginx-typo"} {
		if !strings.Contains(table, want) {
			t.Errorf("summary lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "...\n") || strings.Contains(table, "... |") {
		t.Errorf("summary cuts the error:\n%s", table)
	}
}

func TestPathsArePrintedRelativeToTheCurrentDirectory(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "proj")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "images.star"), []byte(`local(name = "a", files = {"x": "y"})`), 0o644)
	code, out, errOut := imgbuild(t, parent, "run", "proj", "--no-color")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	logs := regexp.MustCompile(`(?m)^logs: (.*)$`).FindStringSubmatch(out)
	state := regexp.MustCompile(`(?m)^state: (.*)$`).FindStringSubmatch(out)
	if logs == nil || state == nil {
		t.Fatalf("no logs: or state: line:\n%s", out)
	}
	for _, p := range []string{logs[1], state[1]} {
		if !strings.HasPrefix(p, "proj/.imgbuild/") {
			t.Errorf("%q is not relative to where imgbuild started", p)
		}
		if _, err := os.Stat(filepath.Join(parent, p)); err != nil {
			t.Errorf("the printed path points at nothing: %v", err)
		}
	}
	if !strings.Contains(out, "| proj/output/a (1 file) ") {
		t.Errorf("artifact not shown relative to the current directory:\n%s", out)
	}
}

func TestLogsPrintsTheLastRunOrOneBuild(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
local(name = "base", provisioners = [shell(inline = ["echo from base, run $IMGBUILD_ROOT"])])
local(name = "run", provisioners = [shell(inline = ["echo from the build called run"])])
`})
	if code, _, _ := imgbuild(t, dir, "logs"); code != 2 {
		t.Errorf("logs before any run: exit %d", code)
	}
	for i := 0; i < 2; i++ {
		if code, out, errOut := imgbuild(t, dir, "run", "images.star", "--no-color"); code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
	}
	code, out, errOut := imgbuild(t, dir, "logs")
	if code != 0 {
		t.Fatalf("logs: exit %d %s", code, errOut)
	}
	for _, want := range []string{"==> run ", "base | build started", "==> base\n", "| from base", "==> run\n", "| from the build called run"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lacks %q:\n%s", want, out)
		}
	}
	// From a subdirectory, one build.
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	code, out, _ = imgbuild(t, filepath.Join(dir, "sub"), "logs", "base")
	if code != 0 || !strings.Contains(out, "| from base") || strings.Contains(out, "from the build called run") {
		t.Errorf("logs base: exit %d\n%s", code, out)
	}
	_, list, _ := imgbuild(t, dir, "logs", "--list")
	runs := strings.Split(strings.TrimSpace(list), "\n")
	if len(runs) != 2 || !strings.Contains(runs[0], "base") || !strings.Contains(runs[0], "run") {
		t.Fatalf("logs --list:\n%s", list)
	}
	first := strings.Fields(runs[0])[0]
	if code, out, _ := imgbuild(t, dir, "logs", first, "run"); code != 0 || !strings.Contains(out, "from the build called run") {
		t.Errorf("logs %s run: exit %d\n%s", first, code, out)
	}
	code, _, errOut = imgbuild(t, dir, "logs", "bsae")
	if code != 2 || !strings.Contains(errOut, `has no log of build "bsae" (did you mean "base"?); its builds: `) {
		t.Errorf("logs bsae: exit %d %s", code, errOut)
	}
	code, _, errOut = imgbuild(t, t.TempDir(), "logs")
	if code != 2 || !strings.Contains(errOut, "no .imgbuild/logs in . or above it") {
		t.Errorf("logs elsewhere: exit %d %s", code, errOut)
	}
}

// TestTraceHasATrackPerBuildAndSpansPerStepAndProvisioner checks the shape
// of the Chrome trace (the Trace Event Format's object form).
func TestTraceHasATrackPerBuildAndSpansPerStepAndProvisioner(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
base = local(name = "base", provisioners = [shell(inline = ["echo one"]), shell(inline = ["echo two"])])
local(name = "web", env = {"B": base.id}, provisioners = [shell(inline = ["true"])])
`})
	code, out, errOut := imgbuild(t, dir, "run", "images.star", "--no-color", "--trace", "trace.json")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	data, err := os.ReadFile(filepath.Join(dir, "trace.json"))
	if err != nil {
		t.Fatal(err)
	}
	var trace struct {
		TraceEvents []struct {
			Name, Cat, Ph string
			Ts            *int64
			Dur           *int64
			Pid, Tid      int
			Args          map[string]any
		}
		DisplayTimeUnit string
	}
	if err := json.Unmarshal(data, &trace); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, data)
	}
	tracks := map[int]string{}
	spans := map[string][2]int64{} // "track/name" → start, end
	for _, e := range trace.TraceEvents {
		switch e.Ph {
		case "M":
			if e.Name == "thread_name" {
				tracks[e.Tid] = e.Args["name"].(string)
			}
		case "X":
			if e.Ts == nil || e.Dur == nil || *e.Dur < 0 || e.Pid != 1 || e.Name == "" || e.Cat == "" {
				t.Errorf("malformed span %+v", e)
				continue
			}
			spans[tracks[e.Tid]+"/"+e.Name] = [2]int64{*e.Ts, *e.Ts + *e.Dur}
		default:
			t.Errorf("unexpected phase %q", e.Ph)
		}
	}
	if len(tracks) != 2 || tracks[1] != "base" || tracks[2] != "web" {
		t.Errorf("tracks %v, want base and web", tracks)
	}
	for _, want := range []string{"base/base", "base/provision", "base/shell 1/2 (echo one)", "base/shell 2/2 (echo two)", "web/queued", "web/web", "web/shell 1/1 (true)"} {
		if _, ok := spans[want]; !ok {
			t.Errorf("no span %q in %v", want, spans)
		}
	}
	in := func(inner, outer string) bool {
		i, o := spans[inner], spans[outer]
		return i[0] >= o[0] && i[1] <= o[1]
	}
	if !in("base/shell 1/2 (echo one)", "base/provision") || !in("base/provision", "base/base") {
		t.Errorf("provisioner spans are not inside the provision step inside the build: %v", spans)
	}
	if spans["web/web"][0] < spans["base/base"][1] {
		t.Errorf("web started before base ended: %v", spans)
	}
}

func TestErrorCleanupProvisionersRunWhenAProvisionerFails(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "cleaned")
	dir := testkit.Workspace(t, map[string]string{"images.star": `
local(
    name = "web",
    provisioners = [shell(inline = ["echo setting up"]), shell(inline = ["exit 7"]), shell(inline = ["echo never"])],
    error_cleanup = [shell_local(command = "echo error cleanup ran > ` + marker + `")],
)
local(name = "ok", provisioners = [shell(inline = ["true"])], error_cleanup = [shell_local(command = "echo wrong >> ` + marker + `")])
`})
	code, out, _ := imgbuild(t, dir, "run", "images.star", "--no-color", "--only", "web")
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	got, _ := os.ReadFile(marker)
	if string(got) != "error cleanup ran\n" {
		t.Errorf("error_cleanup: marker %q\n%s", got, out)
	}
	for _, want := range []string{"a provisioner failed: running the 1 error_cleanup provisioner", "error_cleanup 1/1: shell_local", "provisioner 2/3: shell at images.star"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "echo never") || strings.Contains(out, "| never") {
		t.Error("a provisioner ran after the failed one")
	}
	os.Remove(marker)
	if code, out, _ := imgbuild(t, dir, "run", "images.star", "--no-color", "--only", "ok"); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("error_cleanup ran for a build whose provisioners succeeded")
	}
	_, plan, _ := imgbuild(t, dir, "plan", "images.star")
	if !strings.Contains(plan, "error_cleanup (when a provisioner fails):") {
		t.Errorf("the plan does not show error_cleanup:\n%s", plan)
	}
}
