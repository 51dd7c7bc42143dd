package main

import (
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// TestEvaluationLimitsAreSettable pins down --max-memory, --max-steps and
// their environment variables, and the messages that name the limits.
func TestEvaluationLimitsAreSettable(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{
		"hog.star":  "box = []\nfor i in range(600):\n    box.append('x' * 1000000 + str(i))\n",
		"spin.star": "n = 0\nfor i in range(100000):\n    n += 1\n",
	})
	cases := []struct {
		env        map[string]string
		args       []string
		wantStderr string
	}{
		{nil, []string{"validate", "hog.star", "--max-memory", "64MiB"},
			"Starlark computation cancelled: out of memory: the description holds more than 64 MiB, the limit for one evaluation (raise it with --max-memory or IMGBUILD_MAX_MEMORY)"},
		{map[string]string{"IMGBUILD_MAX_MEMORY": "32M"}, []string{"validate", "hog.star"},
			"out of memory: the description holds more than 32 MiB"},
		{nil, []string{"validate", "spin.star", "--max-steps", "5000"},
			"spin.star:2:1: Starlark computation cancelled: too many steps: the description ran more than 5000 steps, the limit for one evaluation with all the modules it loads (raise it with --max-steps or IMGBUILD_MAX_STEPS)"},
		{map[string]string{"IMGBUILD_MAX_STEPS": "7000"}, []string{"validate", "spin.star"},
			"too many steps: the description ran more than 7000 steps"},
		{nil, []string{"validate", "spin.star", "--max-memory", "lots"},
			`--max-memory: "lots" is not a size: write it like "2G", "1536M" or a number of bytes`},
		{nil, []string{"validate", "spin.star", "--max-memory", "512K"},
			"--max-memory 512K: want at least 1MiB"},
		{nil, []string{"validate", "spin.star", "--max-steps", "0"},
			"--max-steps 0: want at least 1"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args[1:], " "), func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			code, out, errOut := imgbuild(t, dir, c.args...)
			if code != exitInvalid || !strings.Contains(errOut, c.wantStderr) {
				t.Errorf("imgbuild %s (env %v): exit %d\nstdout: %s\nstderr: %s\nwant exit 2 and %q", strings.Join(c.args, " "), c.env, code, out, errOut, c.wantStderr)
			}
			if c.args[1] == "hog.star" && !strings.HasPrefix(errOut, "error: hog.star:3:") {
				t.Errorf("the error does not name the line that holds the memory: %s", errOut)
			}
		})
	}
	if code, out, errOut := imgbuild(t, dir, "validate", "spin.star"); code != 0 {
		t.Errorf("with the default limits: exit %d\n%s%s", code, out, errOut)
	}
}
