package main

import (
	"strings"
	"testing"
)

// TestVarValuesAreNeverSplitOnCommas pins down that --var takes its value
// whole: a JSON list for a list variable, a plain string holding commas,
// and a sensitive value with a comma, which must never be half-printed.
func TestVarValuesAreNeverSplitOnCommas(t *testing.T) {
	dir := workspace(t, map[string]string{"images.star": `
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
