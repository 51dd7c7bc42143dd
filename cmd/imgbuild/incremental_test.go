package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// incrementalWorkspace is a base build that runs a script and a web build
// that consumes the base's output.
func incrementalWorkspace(t *testing.T) string {
	return testkit.Workspace(t, map[string]string{
		"scripts/x.sh": "mkdir -p etc\necho one > etc/x\n",
		"images.star": `token = var("token", default = "s3cret-one", sensitive = True)
base = local(name = "base", force = True, provisioners = [shell(script = "scripts/x.sh")])
local(name = "web", force = True, env = {"FROM": base.id, "TOKEN": token, "AT": timestamp()},
      provisioners = [shell(inline = ["mkdir -p etc", "echo web > etc/web"])])
`,
	})
}

// planLines runs imgbuild plan and returns its output.
func planOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	code, out, errs := imgbuild(t, dir, append([]string{"plan", "--no-color"}, append(args, "images.star")...)...)
	if code != 0 {
		t.Fatalf("plan exited %d: %s", code, errs)
	}
	return out
}

func mustRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	code, out, errs := imgbuild(t, dir, append([]string{"run", "--no-color"}, append(args, "images.star")...)...)
	if code != 0 {
		t.Fatalf("run exited %d:\n%s\n%s", code, out, errs)
	}
	return out
}

func wantIn(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

func TestUnchangedBuildsAreUpToDateAndReusedByTheNextRun(t *testing.T) {
	dir := incrementalWorkspace(t)
	wantIn(t, "first plan", planOut(t, dir), "Plan: 2 builds in 2 waves: 2 new", "  + base (local)", "  + web (local)")
	mustRun(t, dir)
	wantIn(t, "plan after a run", planOut(t, dir), "2 up to date", "  = base (local)", "up to date: built ", ", artifact output/base")
	out := mustRun(t, dir)
	wantIn(t, "second run", out, "2 builds: 2 up to date", "| base  | local  | up to date |")

	code, js, _ := imgbuild(t, dir, "plan", "--json", "images.star")
	var doc struct {
		Builds []engine.PlannedBuild `json:"builds"`
	}
	if err := json.Unmarshal([]byte(js), &doc); code != 0 || err != nil {
		t.Fatalf("plan --json: exit %d, %v", code, err)
	}
	for _, b := range doc.Builds {
		if b.Mark != engine.MarkUpToDate || b.Built == nil || b.Artifact != "output/"+b.Name {
			t.Errorf("plan --json: %s is %q built %v artifact %q", b.Name, b.Mark, b.Built, b.Artifact)
		}
	}
}

func TestPlanNamesWhyABuildIsRebuilt(t *testing.T) {
	dir := incrementalWorkspace(t)
	mustRun(t, dir)
	star := filepath.Join(dir, "images.star")
	src, _ := os.ReadFile(star)

	// A script's content.
	os.WriteFile(filepath.Join(dir, "scripts/x.sh"), []byte("mkdir -p etc\necho two > etc/x\n"), 0o644)
	wantIn(t, "plan after the script changed", planOut(t, dir),
		"Plan: 2 builds in 2 waves: 2 to rebuild", "  ~ base (local)", "      file scripts/x.sh changed", "  ~ web (local)", "      upstream base will be rebuilt")
	mustRun(t, dir)
	// The base was rebuilt to other bytes: its dependent was rebuilt too,
	// and now both are up to date.
	wantIn(t, "plan after the rebuild", planOut(t, dir), "2 up to date")

	// A keyword, a step's keyword, a secret.
	os.WriteFile(star, []byte(strings.Replace(string(src), `echo web > etc/web`, `echo web2 > etc/web`, 1)), 0o644)
	wantIn(t, "plan after a provisioner changed", planOut(t, dir), "1 to rebuild, 1 up to date",
		`      provisioners[0] shell: inline: ["mkdir -p etc", "echo web > etc/web"] → ["mkdir -p etc", "echo web2 > etc/web"]`)
	os.WriteFile(star, src, 0o644)
	wantIn(t, "plan with another secret", planOut(t, dir, "--var", "token=s3cret-two"), "      env: a secret changed")
	wantIn(t, "plan with the same secret", planOut(t, dir, "--var", "token=s3cret-one"), "2 up to date")

	// The artifact itself.
	os.WriteFile(filepath.Join(dir, "output/web/etc/web"), []byte("tampered\n"), 0o644)
	wantIn(t, "plan after the artifact changed", planOut(t, dir), "      artifact changed: output/web/etc/web no longer matches its sha256")
	os.RemoveAll(filepath.Join(dir, "output/base"))
	wantIn(t, "plan after the artifact went", planOut(t, dir), "      artifact is gone: output/base/etc/x is missing", "      upstream base will be rebuilt")
}

func TestTheStateCannotConfirmAGuessedSecret(t *testing.T) {
	dir := incrementalWorkspace(t)
	mustRun(t, dir)
	state, err := os.ReadFile(filepath.Join(dir, ".imgbuild", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("s3cret-one"))
	for _, leak := range []string{"s3cret-one", hex.EncodeToString(sum[:]), hex.EncodeToString(sum[:])[:32]} {
		if strings.Contains(string(state), leak) {
			t.Errorf("the state holds %q", leak)
		}
	}
	wantIn(t, "state", string(state), "(sensitive hmac:")
	key := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "imgbuild", "fingerprint.key")
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("fingerprint key %s: %v %v", key, st, err)
	}
}

func TestForceBuildRebuildsTheNamedBuildsAndTheirDependents(t *testing.T) {
	dir := incrementalWorkspace(t)
	mustRun(t, dir)
	out := mustRun(t, dir, "--force-build", "ba*")
	wantIn(t, "run --force-build ba*", out, "base | rebuilding: forced (--force-build)", "| base  | local  | succeeded  |", "| web   | local  | up to date |")
	// base was rebuilt to the same bytes: web's input is the same.
	out = mustRun(t, dir, "--force")
	wantIn(t, "run --force", out, "2 builds: 2 succeeded")

	code, _, errs := imgbuild(t, dir, "run", "--force-build", "nope", "images.star")
	if code != exitInvalid || !strings.Contains(errs, `error: --force-build: no build matches "nope" (builds: base, web)`) {
		t.Errorf("--force-build nope: exit %d, %s", code, errs)
	}
}

func TestRunValuesDoNotMakeABuildOutOfDate(t *testing.T) {
	dir := incrementalWorkspace(t)
	mustRun(t, dir)
	// web's env holds timestamp(): a later run is still up to date.
	wantIn(t, "plan", planOut(t, dir), "  = web (local)")
}
