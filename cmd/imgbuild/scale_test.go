package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// TestManyBuildsRunWithFewFileDescriptors runs more local() builds than
// the process may open files (ulimit -n 128): a build's log file is opened
// when it starts and closed when it ends, not held from the time it is
// queued. make scale runs 100,000 builds under ulimit -n 1024.
func TestManyBuildsRunWithFewFileDescriptors(t *testing.T) {
	const builds, fds = 1000, 128
	dir := testkit.Workspace(t, map[string]string{"images.star": `
for i in range(1000):
    local(name = "b%d" % i)
`})
	cmd := exec.Command("/bin/sh", "-c", `ulimit -n 128 && exec "$0" run images.star --no-color`, binary)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1000 builds: 1000 succeeded") {
		t.Fatalf("%d builds under ulimit -n %d: %v\n%s", builds, fds, err, lastLines(string(out), 20))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestConcurrentRunsLoseNoManifestEntryNorState runs three imgbuild
// processes at once in one workspace, 300 local() builds each, every build
// writing its entry into one manifest: all 900 entries are kept, and the
// state records all 900 builds (without the file lock, 321 of 900 entries
// were kept).
func TestConcurrentRunsLoseNoManifestEntryNorState(t *testing.T) {
	files := map[string]string{}
	for p := range 3 {
		files[fmt.Sprintf("p%d.star", p)] = fmt.Sprintf(`
for i in range(300):
    local(name = "p%d-b%%d" %% i, post = [manifest(output = "manifest.json")])
`, p)
	}
	dir := testkit.Workspace(t, files)
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for p := range 3 {
		cmd := exec.Command(binary, "run", fmt.Sprintf("p%d.star", p), "--no-color", "--parallel", "8")
		cmd.Dir = dir
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("run %d: %v\n%s", i, err, lastLines(outs[i].String(), 20))
		}
	}
	var man struct {
		Builds []struct {
			Name string `json:"name"`
		} `json:"builds"`
	}
	readJSON(t, filepath.Join(dir, "manifest.json"), &man)
	if len(man.Builds) != 900 {
		t.Errorf("the manifest holds %d of 900 entries", len(man.Builds))
	}
	var state struct {
		Builds map[string]any `json:"builds"`
	}
	readJSON(t, filepath.Join(dir, ".imgbuild", "state.json"), &state)
	if len(state.Builds) != 900 {
		t.Errorf("the state records %d of 900 builds", len(state.Builds))
	}
}
