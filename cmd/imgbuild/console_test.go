package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

func TestConsoleEvaluatesExpressionsOverTheDescriptionsGlobals(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
version = var("version", default = "dev")
token = var("token", sensitive = True, default = "hunter2-secret")
base = local(name = "base")
def tag(s):
    return "v-" + s
`})
	cmd := exec.Command(binary, "console", "images.star", "--var", "version=1.2")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader("version\ntag(version)\nbase.id\ntoken\nx = [1, 2]\nlen(x) * 3\nnope\ndef f(n):\n    return n + 1\n\nf(41)\nexit\n")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{`>>> "1.2"`, `>>> "v-1.2"`, ">>> ${base.id}", ">>> (sensitive)", ">>> >>> 6", "error: <console>:1:1: undefined: nope", ">>> ... ... >>> 42"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "hunter2") {
		t.Error("the console shows the secret")
	}
}
