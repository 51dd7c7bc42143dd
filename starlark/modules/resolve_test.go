package modules

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/modules/modtest"
)

// platform is a repository with two releases: v1.0.0 and v2.0.0, each
// declaring module(name = "platform") and holding a users module and a
// ssh module that loads it by a path dependency inside the repository.
func platform(t *testing.T) *modtest.Repo {
	r := newRepo(t)
	for _, v := range []string{"1", "2"} {
		r.Commit(map[string]string{
			"modules/imgbuild.mod":     "module(name = \"platform\")\n",
			"modules/users.star":       "version = " + v + "\n",
			"modules/ssh/imgbuild.mod": "module(name = \"platform-ssh\")\ndep(\"users\", path = \"..\")\n",
			"modules/ssh/ssh.star":     "load('@users//users.star', 'version')\n",
		})
		r.Tag("v" + v + ".0.0")
	}
	return r
}

// TestDependenciesOfDependenciesResolvePerModule: each module names its
// own dependencies; a path dependency of a fetched module is the same
// repository at the same commit; mod graph and mod why explain the result.
func TestDependenciesOfDependenciesResolvePerModule(t *testing.T) {
	p := platform(t)
	sec := newRepo(t)
	sec.Commit(map[string]string{
		"imgbuild.mod": fmt.Sprintf("module(name = \"security\")\ndep(\"plat\", git = %q, ref = \"v2.0.0\", path = \"modules\")\ndep(\"sshd\", git = %q, ref = \"v2.0.0\", path = \"modules/ssh\")\n", p.Bare, p.Bare),
		"harden.star":  "load('@plat//users.star', 'version')\n",
	})
	sec.Tag("v0.3.0")
	root := workspace(t, fmt.Sprintf("module(name = \"product\")\ndep(\"platform\", git = %q, ref = \"v2.0.0\", path = \"modules\")\ndep(\"security\", git = %q, ref = \"v0.3.0\")\n", p.Bare, sec.Bare))
	g := mustResolve(t, root, t.TempDir(), Options{})

	if got := fmt.Sprint(g.Deps); got != "map[:map[platform:platform security:security] platform:map[] platform-ssh:map[users:platform] security:map[plat:platform sshd:platform-ssh]]" {
		t.Errorf("deps = %s", got)
	}
	if got := read(t, g, "platform", "users.star"); got != "version = 2\n" {
		t.Errorf("users.star = %q", got)
	}
	ssh := g.Modules["platform-ssh"]
	if ssh.Commit != g.Modules["platform"].Commit || ssh.Dep.Path != "modules/ssh" {
		t.Errorf("platform-ssh = %+v", ssh)
	}
	lock, _ := ReadLock(root)
	if got := strings.Join(lock.Names(), " "); got != "platform platform-ssh security" {
		t.Errorf("lock names %s\n%s", got, lock.Marshal())
	}
	text := g.Text()
	for _, want := range []string{
		"product (workspace)\n",
		"├── platform  v2.0.0 (commit ",
		"└── security  v0.3.0 (commit ",
		"    ├── platform (as \"plat\")  v2.0.0 (commit " + g.Modules["platform"].Commit[:12] + ") (above)\n",
		"    └── platform-ssh (as \"sshd\")  v2.0.0 (commit ",
		"        └── platform (as \"users\")  ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("graph:\n%s\nwant it to contain %q", text, want)
		}
	}
	why, err := g.WhyText("platform")
	if err != nil {
		t.Fatal(err)
	}
	want := "product (workspace) → platform  (imgbuild.mod:2:4)\n" +
		"product (workspace) → security → platform (as \"plat\")  (@security//imgbuild.mod:2:4)\n" +
		"product (workspace) → security → platform-ssh (as \"sshd\") → platform (as \"users\")  (@platform-ssh//imgbuild.mod:2:4)\n"
	if !strings.HasPrefix(why, want) || !strings.Contains(why, "platform is v2.0.0 (commit ") {
		t.Errorf("why:\n%s\nwant:\n%s", why, want)
	}
	if _, err := g.WhyText("nope"); err == nil || err.Error() != `no module is named "nope" (modules: platform, platform-ssh, security)` {
		t.Errorf("why nope: %v", err)
	}
}

// TestTwoCommitsOfOneModuleShowBothPaths: the workspace wants platform
// v1, security wants v2: an error naming both versions and both paths.
func TestTwoCommitsOfOneModuleShowBothPaths(t *testing.T) {
	p := platform(t)
	sec := newRepo(t)
	sec.Commit(map[string]string{
		"imgbuild.mod": fmt.Sprintf("module(name = \"security\")\ndep(\"plat\", git = %q, ref = \"v2.0.0\", path = \"modules\")\n", p.Bare),
	})
	sec.Tag("v0.3.0")
	root := workspace(t, fmt.Sprintf("dep(\"platform\", git = %q, ref = \"v1.0.0\", path = \"modules\")\ndep(\"security\", git = %q, ref = \"v0.3.0\")\n", p.Bare, sec.Bare))
	_, err := resolve(t, root, t.TempDir(), Options{})
	wantError(t, err,
		"module platform is wanted at two versions:\n",
		"  v1.0.0 (commit ", "): workspace → platform (imgbuild.mod:1:4)\n",
		"  v2.0.0 (commit ", "): workspace → security → platform (as \"plat\") (@security//imgbuild.mod:2:4)\n",
		"depend on one version: change one of them (imgbuild mod why platform shows every path to it)")
}

func TestACycleBetweenModulesIsShownAsTheChain(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		"ws/imgbuild.mod": "dep(\"a\", path = \"../a\")\n",
		"a/imgbuild.mod":  "module(name = \"a\")\ndep(\"b\", path = \"../b\")\n",
		"b/imgbuild.mod":  "module(name = \"b\")\ndep(\"c\", path = \"../c\")\n",
		"c/imgbuild.mod":  "module(name = \"c\")\ndep(\"again\", path = \"../a\")\n",
	})
	_, err := resolve(t, filepath.Join(root, "ws"), t.TempDir(), Options{})
	wantError(t, err, "module cycle: a → b → c → a: modules may not depend on each other in a ring")

	// Back to the workspace itself.
	root = testkit.Workspace(t, map[string]string{
		"ws/imgbuild.mod": "module(name = \"product\")\ndep(\"a\", path = \"../a\")\n",
		"a/imgbuild.mod":  "module(name = \"a\")\ndep(\"p\", path = \"../ws\")\n",
	})
	_, err = resolve(t, filepath.Join(root, "ws"), t.TempDir(), Options{})
	wantError(t, err, "module cycle: product (workspace) → a → p, which is the workspace itself")
}

// TestLockedFailsOnAMissingOrStaleLock: --locked says what changed and
// the command that updates the lock.
func TestLockedFailsOnAMissingOrStaleLock(t *testing.T) {
	p := platform(t)
	mod := fmt.Sprintf("dep(\"platform\", git = %q, ref = \"v1.0.0\", path = \"modules\")\n", p.Bare)
	root := workspace(t, mod)
	cache := t.TempDir()
	_, err := resolve(t, root, cache, Options{Locked: true})
	wantError(t, err, "imgbuild.lock is missing (--locked), and the workspace has modules to fetch:\n  dep \"platform\" (imgbuild.mod:1:4) (git "+p.Bare+" ref v1.0.0 path modules) is not in the lock\nrun imgbuild mod download, and commit imgbuild.lock")

	mustResolve(t, root, cache, Options{})
	testkit.WriteFile(t, filepath.Join(root, "imgbuild.mod"), strings.Replace(mod, "v1.0.0", "v2.0.0", 1)+"dep(\"local\", path = \"local\")\n")
	testkit.WriteFile(t, filepath.Join(root, "local/x.star"), "")
	_, err = resolve(t, root, cache, Options{Locked: true})
	wantError(t, err, "imgbuild.lock is stale (--locked):\n  dep \"platform\" (imgbuild.mod:1:4) asks for git "+p.Bare+" ref v2.0.0 path modules; the lock has git "+p.Bare+" ref v1.0.0 path modules\nrun imgbuild mod download to update it (imgbuild mod update NAME also moves a branch or tag to its newest commit)")

	// Without --locked the run goes on with what the lock lacks, and says
	// what it would change.
	g, err := resolve(t, root, cache, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ch := strings.Join(g.LockChanges(), "\n"); !strings.Contains(ch, "added platform (git "+p.Bare+" ref v2.0.0 path modules, commit ") || !strings.Contains(ch, "removed platform (git "+p.Bare+" ref v1.0.0 path modules, commit ") {
		t.Errorf("changes: %s", ch)
	}

	// An entry nothing asks for is stale too.
	testkit.WriteFile(t, filepath.Join(root, "imgbuild.mod"), "")
	_, err = resolve(t, root, cache, Options{Locked: true})
	wantError(t, err, "imgbuild.lock is stale (--locked):\n  the lock still has platform (git "+p.Bare+" ref v1.0.0 path modules), which nothing depends on now")
}

// TestVendoredModulesNeedNoCache: mod vendor copies the fetched modules
// into third_party/imgbuild; loads use them with no cache and no network,
// and refuse a vendored copy that was edited.
func TestVendoredModulesNeedNoCache(t *testing.T) {
	p := platform(t)
	root := workspace(t, fmt.Sprintf("dep(\"ssh\", git = %q, ref = \"v1.0.0\", path = \"modules/ssh\")\n", p.Bare))
	g := mustResolve(t, root, t.TempDir(), Options{})
	n, err := Vendor(g)
	if err != nil || n != 2 {
		t.Fatalf("Vendor = %d, %v", n, err)
	}
	os.RemoveAll(p.Bare)
	g, err = resolve(t, root, filepath.Join(t.TempDir(), "empty-cache"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !g.Vendored || g.Modules["platform"].Dir != filepath.Join(root, VendorDir, "platform") {
		t.Errorf("not read from the vendor directory: %+v", g.Modules["platform"])
	}
	if got := read(t, g, "platform", "users.star"); got != "version = 1\n" {
		t.Errorf("users.star = %q", got)
	}
	testkit.WriteFile(t, filepath.Join(root, VendorDir, "platform/users.star"), "version = 99\n")
	_, err = resolve(t, root, t.TempDir(), Options{})
	wantError(t, err, "module platform in "+filepath.Join(root, VendorDir, "platform")+" hashes to sha256:", "the vendored copy was changed; run imgbuild mod vendor to restore it")
}

// TestVerifyReportsEveryModuleWithoutRepairing: mod verify only looks.
func TestVerifyReportsEveryModuleWithoutRepairing(t *testing.T) {
	p := platform(t)
	root := workspace(t, fmt.Sprintf("dep(\"ssh\", git = %q, ref = \"v1.0.0\", path = \"modules/ssh\")\n", p.Bare))
	cache := t.TempDir()
	g := mustResolve(t, root, cache, Options{})
	lines, ok := Verify(mustResolve(t, root, cache, Options{Check: true}))
	if !ok || len(lines) != 2 || !strings.HasPrefix(lines[0], "platform: ok (commit ") || !strings.HasPrefix(lines[1], "platform-ssh: ok (v1.0.0 (commit ") {
		t.Errorf("verify: %v %v", ok, lines)
	}
	users := filepath.Join(g.Modules["platform"].Dir, "users.star")
	testkit.WriteFile(t, users, "version = 99\n")
	lines, ok = Verify(mustResolve(t, root, cache, Options{Check: true}))
	if ok || !strings.Contains(lines[0], "platform: "+g.Modules["platform"].Dir+" hashes to sha256:") || !strings.Contains(lines[0], "the cached copy was changed on disk (the next plan or run fetches it again), or the lock was edited") {
		t.Errorf("verify: %v %v", ok, lines)
	}
	if data, _ := os.ReadFile(users); string(data) != "version = 99\n" {
		t.Error("verify repaired the cache")
	}
	os.RemoveAll(filepath.Join(cache, "trees"))
	lines, ok = Verify(mustResolve(t, root, cache, Options{Check: true}))
	if ok || !strings.Contains(strings.Join(lines, "\n"), "not in the module cache") {
		t.Errorf("verify: %v %v", ok, lines)
	}
}

// TestUpdateOfAnUnknownNameListsTheModules.
func TestUpdateOfAnUnknownNameListsTheModules(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		"ws/imgbuild.mod": "dep(\"a\", path = \"../a\")\n",
		"a/x.star":        "",
	})
	_, err := resolve(t, filepath.Join(root, "ws"), t.TempDir(), Options{Update: []string{"b"}})
	wantError(t, err, `no module is named "b" (modules: a)`)
}
