package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/modules/modtest"
)

// modCache gives the test a module cache of its own and takes CI's
// default of --locked away, as a developer's machine has it.
func modCache(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("IMGBUILD_MODULE_CACHE", dir)
	t.Setenv("CI", "")
	return dir
}

// platformRepo is a platform team's repository: v1.0.0 and v2.0.0 of
// motd.star, then a main branch that moved past both.
func platformRepo(t *testing.T) *modtest.Repo {
	t.Helper()
	r := modtest.NewRepo(t)
	for _, v := range []string{"1.0.0", "2.0.0"} {
		r.Commit(map[string]string{
			"imgbuild.mod": "module(name = \"platform\")\n",
			"motd.star":    "def motd():\n    return \"platform " + v + "\\n\"\n",
		})
		r.Tag("v" + v)
	}
	return r
}

// productWorkspace depends on platform at ref and builds one local()
// directory with its motd.
func productWorkspace(t *testing.T, url, ref string) string {
	t.Helper()
	return testkit.Workspace(t, map[string]string{
		"imgbuild.mod": fmt.Sprintf("module(name = \"product\")\ndep(\"platform\", git = %q, ref = %q)\n", url, ref),
		"images.star":  "load(\"@platform//motd.star\", \"motd\")\n\nlocal(name = \"app\", files = {\"etc/motd\": motd()})\n",
	})
}

// mod runs imgbuild in dir and fails the test unless it exits with code.
func mod(t *testing.T, dir string, code int, args ...string) (string, string) {
	t.Helper()
	got, out, errOut := imgbuild(t, dir, args...)
	if got != code {
		t.Fatalf("imgbuild %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, code, out, errOut)
	}
	return out, errOut
}

// TestModDownloadGraphWhyVerifyVendorUpdate walks a product team through
// the mod commands: download writes the lock, plan and run use it, graph
// and why explain it, verify finds a tampered cache, vendor makes the
// workspace build without the cache, update moves a branch.
func TestModDownloadGraphWhyVerifyVendorUpdate(t *testing.T) {
	cache := modCache(t)
	p := platformRepo(t)
	dir := productWorkspace(t, p.Bare, "v1.0.0")

	out, errOut := mod(t, dir, 0, "mod", "download")
	v1 := p.Git("", "rev-parse", "v1.0.0^{commit}")
	wantIn(t, "mod download", out, "wrote "+filepath.Join(dir, "imgbuild.lock")+":\n  added platform (git "+p.Bare+" ref v1.0.0, commit "+v1[:12]+")\n")
	wantIn(t, "mod download's progress", errOut, "fetching platform (git "+p.Bare+" ref v1.0.0)")
	out, _ = mod(t, dir, 0, "mod", "download")
	wantIn(t, "a second mod download", out, "imgbuild.lock is up to date: 1 module locked")
	out, _ = mod(t, dir, 0, "mod", "why", completeFlag)
	if out != "platform\n" {
		t.Errorf("completing mod why: %q, want the locked modules", out)
	}

	// Runs are offline after a download: the repository is gone.
	os.Rename(p.Bare, p.Bare+".away")
	mod(t, dir, 0, "run", "--locked", "--no-color", "images.star")
	if got, _ := os.ReadFile(filepath.Join(dir, "output/app/etc/motd")); string(got) != "platform 1.0.0\n" {
		t.Errorf("etc/motd = %q", got)
	}
	out, _ = mod(t, dir, 0, "mod", "graph")
	wantIn(t, "mod graph", out, "product (workspace)\n└── platform  v1.0.0 (commit "+v1[:12]+")  sha256:")
	out, _ = mod(t, dir, 0, "mod", "why", "platform")
	wantIn(t, "mod why", out, "product (workspace) → platform  (imgbuild.mod:2:4)\nplatform is v1.0.0 (commit "+v1[:12]+"), content sha256:")
	_, errOut = mod(t, dir, 1, "mod", "why", "nope")
	wantIn(t, "mod why nope", errOut, `error: mod why: no module is named "nope" (modules: platform)`)
	out, _ = mod(t, dir, 0, "mod", "verify")
	wantIn(t, "mod verify", out, "platform: ok (v1.0.0 (commit "+v1[:12]+"), sha256:", "every module in the module cache is what imgbuild.lock says")

	// A cached file changed on disk: verify names it and repairs nothing.
	tree := filepath.Join(cache, "trees", "git-"+v1)
	os.WriteFile(filepath.Join(tree, "motd.star"), []byte("def motd():\n    return \"tampered\\n\"\n"), 0o644)
	out, errOut = mod(t, dir, 1, "mod", "verify")
	wantIn(t, "mod verify of a tampered cache", out, "platform: "+tree+" hashes to sha256:")
	wantIn(t, "mod verify of a tampered cache", errOut, "error: mod verify: modules in the module cache are not what imgbuild.lock says (see above)")
	os.Rename(p.Bare+".away", p.Bare)

	// Vendored, the workspace builds with an empty cache (the tampered
	// tree is fetched again for the copy).
	out, errOut = mod(t, dir, 0, "mod", "vendor")
	wantIn(t, "mod vendor", out, "vendored 1 module into "+filepath.Join(dir, "third_party/imgbuild"))
	wantIn(t, "mod vendor's progress", errOut, "the cached copy of platform (")
	if got, _ := os.ReadFile(filepath.Join(dir, "third_party/imgbuild/platform/motd.star")); !strings.Contains(string(got), "platform 1.0.0") {
		t.Errorf("vendored motd.star = %q", got)
	}
	t.Setenv("IMGBUILD_MODULE_CACHE", t.TempDir())
	os.Rename(p.Bare, p.Bare+".away")
	out, _ = mod(t, dir, 0, "plan", "--locked", "--no-color", "images.star")
	wantIn(t, "plan from the vendor directory", out, `files = {"etc/motd": "platform 1.0.0\n"}`)
	out, _ = mod(t, dir, 0, "mod", "verify")
	wantIn(t, "mod verify of vendored modules", out, "platform: ok", "every module in third_party/imgbuild is what imgbuild.lock says")
	os.Rename(p.Bare+".away", p.Bare)
	os.RemoveAll(filepath.Join(dir, "third_party"))

	// A branch: locked at its commit until mod update moves it.
	testkit.WriteFile(t, filepath.Join(dir, "imgbuild.mod"), fmt.Sprintf("module(name = \"product\")\ndep(\"platform\", git = %q, ref = \"main\")\n", p.Bare))
	mod(t, dir, 0, "mod", "download")
	before := p.Git("", "rev-parse", "HEAD")
	after := p.Commit(map[string]string{"motd.star": "def motd():\n    return \"platform next\\n\"\n"})
	out, _ = mod(t, dir, 0, "plan", "--no-color", "images.star")
	wantIn(t, "plan after the branch moved", out, `"platform 2.0.0\n"`)
	out, _ = mod(t, dir, 0, "mod", "update", "platform")
	wantIn(t, "mod update", out, "  updated platform: git "+p.Bare+" ref main, commit "+before[:12]+" → git "+p.Bare+" ref main, commit "+after[:12]+"\n")
	out, _ = mod(t, dir, 0, "plan", "--locked", "--no-color", "images.star")
	wantIn(t, "plan after mod update", out, `"platform next\n"`)
	_, errOut = mod(t, dir, 1, "mod", "update", "nope")
	wantIn(t, "mod update nope", errOut, `error: mod update: no module is named "nope" (modules: platform)`)
}

// TestLockedSaysWhatChangedAndHowToFixIt: --locked, and CI=true without
// it, refuse a missing or stale lock; --locked=false gives CI back the
// warning.
func TestLockedSaysWhatChangedAndHowToFixIt(t *testing.T) {
	modCache(t)
	p := platformRepo(t)
	dir := productWorkspace(t, p.Bare, "v1.0.0")
	missing := "error: imgbuild.lock is missing (--locked), and the workspace has modules to fetch:\n" +
		"  dep \"platform\" (imgbuild.mod:2:4) (git " + p.Bare + " ref v1.0.0) is not in the lock\n" +
		"run imgbuild mod download, and commit imgbuild.lock\n"
	for _, cmd := range []string{"validate", "plan", "run"} {
		_, errOut := mod(t, dir, 2, cmd, "--locked", "images.star")
		wantIn(t, cmd+" --locked", errOut, missing)
	}
	t.Setenv("CI", "true")
	ci := "(--locked is on because CI=true; --locked=false turns it off)\n"
	_, errOut := mod(t, dir, 2, "plan", "images.star")
	wantIn(t, "plan with CI=true", errOut, missing+ci)
	_, errOut = mod(t, dir, 1, "mod", "download")
	wantIn(t, "mod download with CI=true", errOut, "error: mod download: imgbuild.lock is missing (--locked)", ci)
	_, errOut = mod(t, dir, 0, "plan", "--locked=false", "images.star")
	wantIn(t, "plan --locked=false with CI=true", errOut, "warning: imgbuild.lock is not up to date with imgbuild.mod; this run uses:\n  added platform (git "+p.Bare+" ref v1.0.0, commit ")
	if _, err := os.Stat(filepath.Join(dir, "imgbuild.lock")); err == nil {
		t.Error("plan wrote imgbuild.lock: only imgbuild mod download and update do")
	}
	t.Setenv("CI", "")

	mod(t, dir, 0, "mod", "download")
	testkit.WriteFile(t, filepath.Join(dir, "imgbuild.mod"), fmt.Sprintf("module(name = \"product\")\ndep(\"platform\", git = %q, ref = \"v2.0.0\")\n", p.Bare))
	_, errOut = mod(t, dir, 2, "validate", "--locked", "images.star")
	wantIn(t, "validate --locked with a stale lock", errOut, "error: imgbuild.lock is stale (--locked):\n"+
		"  dep \"platform\" (imgbuild.mod:2:4) asks for git "+p.Bare+" ref v2.0.0; the lock has git "+p.Bare+" ref v1.0.0\n"+
		"run imgbuild mod download to update it (imgbuild mod update NAME also moves a branch or tag to its newest commit)\n")
}

// TestModuleMistakesAtTheCommandLine: each bad input of imgbuild.mod and
// imgbuild.lock, as plan and imgbuild mod print it.
func TestModuleMistakesAtTheCommandLine(t *testing.T) {
	modCache(t)
	p := platformRepo(t)

	t.Run("undeclared module", func(t *testing.T) {
		dir := productWorkspace(t, p.Bare, "v1.0.0")
		testkit.WriteFile(t, filepath.Join(dir, "images.star"), "load(\"@plat//motd.star\", \"motd\")\n")
		_, errOut := mod(t, dir, 2, "validate", "images.star")
		wantIn(t, "validate", errOut, `error: images.star:1:1: cannot load @plat//motd.star: no module named "plat" is declared in imgbuild.mod (declared: platform)`)
	})
	t.Run("unreachable repository", func(t *testing.T) {
		gone := filepath.Join(t.TempDir(), "gone.git")
		dir := productWorkspace(t, gone, "v1.0.0")
		_, errOut := mod(t, dir, 1, "mod", "download")
		wantIn(t, "mod download", errOut, "error: mod download: dep \"platform\" (imgbuild.mod:2:4): cannot reach the git repository "+gone+"; git said:\n  fatal: '"+gone+"' does not appear to be a git repository")
		_, errOut = mod(t, dir, 2, "plan", "images.star")
		wantIn(t, "plan", errOut, "error: dep \"platform\" (imgbuild.mod:2:4): cannot reach the git repository "+gone+"; git said:")
	})
	t.Run("ref not found", func(t *testing.T) {
		dir := productWorkspace(t, p.Bare, "v3.0.0")
		_, errOut := mod(t, dir, 1, "mod", "download")
		wantIn(t, "mod download", errOut, "error: mod download: dep \"platform\" (imgbuild.mod:2:4): "+p.Bare+" has no tag, branch or commit \"v3.0.0\"; tags: v1.0.0, v2.0.0; branches: main\n")
	})
	t.Run("lock hash mismatch", func(t *testing.T) {
		dir := productWorkspace(t, p.Bare, "v1.0.0")
		mod(t, dir, 0, "mod", "download")
		lockFile := filepath.Join(dir, "imgbuild.lock")
		data, _ := os.ReadFile(lockFile)
		i := strings.Index(string(data), `"hash": "sha256:`) + len(`"hash": "sha256:`)
		edited := string(data[:i]) + strings.Repeat("0", 64) + string(data[i+64:])
		os.WriteFile(lockFile, []byte(edited), 0o644)
		_, errOut := mod(t, dir, 2, "plan", "images.star")
		wantIn(t, "plan", errOut, "error: dep \"platform\" (imgbuild.mod:2:4): module platform (git "+p.Bare+" ref v1.0.0, commit ",
			"hashes to sha256:", ", but imgbuild.lock says sha256:"+strings.Repeat("0", 64)+", even fetched again: ",
			"run imgbuild mod update platform to accept it")
		_, errOut = mod(t, dir, 1, "mod", "verify")
		wantIn(t, "mod verify", errOut, "error: mod verify: modules in the module cache are not what imgbuild.lock says")
	})
	t.Run("cycle", func(t *testing.T) {
		a, b := modtest.NewRepo(t), modtest.NewRepo(t)
		a.Commit(map[string]string{"imgbuild.mod": fmt.Sprintf("module(name = \"hardening\")\ndep(\"users\", git = %q, ref = \"main\")\n", b.Bare)})
		b.Commit(map[string]string{"imgbuild.mod": fmt.Sprintf("module(name = \"users\")\ndep(\"hardening\", git = %q, ref = \"main\")\n", a.Bare)})
		dir := productWorkspace(t, a.Bare, "main")
		_, errOut := mod(t, dir, 1, "mod", "graph")
		wantIn(t, "mod graph", errOut, "error: mod graph: module cycle: hardening → users → hardening: modules may not depend on each other in a ring\n")
		_, errOut = mod(t, dir, 2, "plan", "images.star")
		wantIn(t, "plan", errOut, "error: module cycle: hardening → users → hardening")
	})
	t.Run("no imgbuild.mod", func(t *testing.T) {
		dir := t.TempDir()
		_, errOut := mod(t, dir, 2, "mod", "graph")
		wantIn(t, "mod graph", errOut, "error: no imgbuild.mod in ", " or above: imgbuild mod works on a workspace's imgbuild.mod (write one with dep(...) lines, or give -C DIR)")
	})
}

func TestDocsExplainsImgbuildMod(t *testing.T) {
	for _, name := range []string{"imgbuild.mod", "dep", "mod"} {
		out, _ := mod(t, t.TempDir(), 0, "docs", name)
		wantIn(t, "docs "+name, out, "dep(name, git = URL, ref = TAG|BRANCH|COMMIT, path = SUBDIR)", "imgbuild.lock: the commit each ref resolved to", "imgbuild mod vendor            copy the modules into third_party/imgbuild/")
	}
	out, _ := mod(t, t.TempDir(), 0, "docs")
	wantIn(t, "docs", out, "imgbuild docs imgbuild.mod")
}
