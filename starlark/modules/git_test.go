package modules

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// TestTagsBranchesAndCommits: a ref is a tag (annotated, peeled to its
// commit), a branch, a full commit or an abbreviated one; the lock
// records each commit and content hash.
func TestTagsBranchesAndCommits(t *testing.T) {
	r := newRepo(t)
	c1 := r.Commit(map[string]string{"lib.star": "v = 1\n"})
	r.Tag("v1.0.0")
	c2 := r.Commit(map[string]string{"lib.star": "v = 2\n"})
	r.Git("", "checkout", "--quiet", "-b", "dev")
	c3 := r.Commit(map[string]string{"lib.star": "v = 3\n"})
	r.Git("", "checkout", "--quiet", "main")
	cache := t.TempDir()
	for _, c := range []struct{ ref, commit, v string }{
		{"v1.0.0", c1, "v = 1\n"}, {"main", c2, "v = 2\n"}, {"dev", c3, "v = 3\n"}, {c2, c2, "v = 2\n"}, {c3[:9], c3, "v = 3\n"},
	} {
		root := workspace(t, fmt.Sprintf("dep(\"lib\", git = %q, ref = %q)\n", r.Bare, c.ref))
		g := mustResolve(t, root, cache, Options{})
		if m := g.Modules["lib"]; m.Commit != c.commit {
			t.Errorf("ref %s resolved to %s, want %s", c.ref, m.Commit, c.commit)
			continue
		}
		if got := read(t, g, "lib", "lib.star"); got != c.v {
			t.Errorf("ref %s: lib.star = %q, want %q", c.ref, got, c.v)
		}
		lock, err := ReadLock(root)
		if err != nil {
			t.Fatal(err)
		}
		if m := lock.Modules[0]; len(lock.Modules) != 1 || m.Git != r.Bare || m.Ref != c.ref || m.Commit != c.commit || m.Hash != g.Modules["lib"].Hash {
			t.Errorf("lock: %s", lock.Marshal())
		}
		if c.ref == "v1.0.0" && g.Modules["lib"].Version() != "v1.0.0 (commit "+c1[:12]+")" {
			t.Errorf("version %q", g.Modules["lib"].Version())
		}
	}
}

// TestAMovedBranchDoesNotChangeALockedBuild: once locked, a branch that
// moves on changes nothing until imgbuild mod update asks again; and the
// locked version needs no network once cached.
func TestAMovedBranchDoesNotChangeALockedBuild(t *testing.T) {
	r := newRepo(t)
	first := r.Commit(map[string]string{"lib.star": "v = 'first'\n"})
	root := workspace(t, fmt.Sprintf("dep(\"lib\", git = %q, ref = \"main\")\n", r.Bare))
	cache := t.TempDir()
	mustResolve(t, root, cache, Options{})
	second := r.Commit(map[string]string{"lib.star": "v = 'second'\n"})

	g := mustResolve(t, root, cache, Options{Locked: true})
	if g.Modules["lib"].Commit != first || read(t, g, "lib", "lib.star") != "v = 'first'\n" {
		t.Fatalf("the moved branch changed the build: %+v", g.Modules["lib"])
	}
	if ch := g.LockChanges(); ch != nil {
		t.Errorf("lock changes: %v", ch)
	}
	// Offline: the remote is gone, the cache serves the locked commit.
	hidden := r.Bare + ".away"
	os.Rename(r.Bare, hidden)
	if _, err := resolve(t, root, cache, Options{Locked: true}); err != nil {
		t.Fatalf("a locked, cached module needed the network: %v", err)
	}
	os.Rename(hidden, r.Bare)

	g = mustResolve(t, root, cache, Options{Update: []string{"lib"}})
	if g.Modules["lib"].Commit != second {
		t.Fatalf("mod update lib kept %s", g.Modules["lib"].Commit)
	}
	if ch := strings.Join(g.LockChanges(), "\n"); !strings.Contains(ch, "updated lib: git "+r.Bare+" ref main, commit "+first[:12]+" → git "+r.Bare+" ref main, commit "+second[:12]) {
		t.Errorf("lock changes: %s", ch)
	}
}

// TestATamperedCacheEntryIsFetchedAgain: a cached tree changed on disk no
// longer hashes to the lock's hash; it is made again from the repository.
func TestATamperedCacheEntryIsFetchedAgain(t *testing.T) {
	_, root := libAtV1(t, "v = 'genuine'\n")
	cache := t.TempDir()
	g := mustResolve(t, root, cache, Options{})
	testkit.WriteFile(t, filepath.Join(g.Modules["lib"].Dir, "lib.star"), "v = 'evil'\n")
	testkit.WriteFile(t, filepath.Join(g.Modules["lib"].Dir, "extra.star"), "x = 1\n")

	var said []string
	g, err := resolve(t, root, cache, Options{Locked: true, Progress: func(m string) { said = append(said, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, g, "lib", "lib.star"); got != "v = 'genuine'\n" {
		t.Errorf("lib.star = %q after repair", got)
	}
	if _, err := os.Stat(filepath.Join(g.Modules["lib"].Dir, "extra.star")); err == nil {
		t.Error("the added file survived the repair")
	}
	if !strings.Contains(strings.Join(said, "\n"), "the cached copy of lib (sha256:") || !strings.Contains(strings.Join(said, "\n"), "was changed on disk: fetching it again") {
		t.Errorf("progress: %q", said)
	}
}

// TestALockHashMismatchIsRefused: when even a fresh fetch does not give
// the content the lock names (history rewritten, or the lock edited),
// nothing loads.
func TestALockHashMismatchIsRefused(t *testing.T) {
	r, root := libAtV1(t, "v = 1\n")
	mustResolve(t, root, t.TempDir(), Options{})
	lock, _ := ReadLock(root)
	good := lock.Modules[0].Hash
	lock.Modules[0].Hash = HashPrefix + strings.Repeat("0", 64)
	WriteLock(root, lock)
	_, err := resolve(t, root, t.TempDir(), Options{})
	wantError(t, err,
		`dep "lib" (imgbuild.mod:1:4): module lib (git `+r.Bare+` ref v1, commit `,
		`hashes to `+good+`, but imgbuild.lock says sha256:0000000000000000000000000000000000000000000000000000000000000000, even fetched again`,
		`run imgbuild mod update lib to accept it`)
}

// TestAPrivateURLIsPassedToGitUnchanged: git@host:org/repo reaches git as
// written, so the user's url.<base>.insteadOf rules and SSH setup apply.
func TestAPrivateURLIsPassedToGitUnchanged(t *testing.T) {
	r := newRepo(t)
	r.Commit(map[string]string{"lib.star": "v = 'private'\n"})
	r.Tag("v1")
	config := filepath.Join(t.TempDir(), "gitconfig")
	testkit.WriteFile(t, config, fmt.Sprintf("[url %q]\n\tinsteadOf = git@git.example.com:acme/\n", filepath.Dir(r.Bare)+"/"))
	t.Setenv("GIT_CONFIG_GLOBAL", config)
	root := workspace(t, "dep(\"lib\", git = \"git@git.example.com:acme/remote.git\", ref = \"v1\")\n")
	g := mustResolve(t, root, t.TempDir(), Options{})
	if got := read(t, g, "lib", "lib.star"); got != "v = 'private'\n" {
		t.Errorf("lib.star = %q", got)
	}
	lock, _ := ReadLock(root)
	if lock.Modules[0].Git != "git@git.example.com:acme/remote.git" {
		t.Errorf("the lock rewrote the URL: %+v", lock.Modules[0])
	}

	// Without the rewrite, git goes to ssh with the host and path as
	// written: GIT_SSH_COMMAND records what it was given.
	t.Setenv("GIT_CONFIG_GLOBAL", os.DevNull)
	args := filepath.Join(t.TempDir(), "args")
	script := filepath.Join(t.TempDir(), "fake-ssh")
	testkit.WriteFile(t, script, "#!/bin/sh\necho \"$@\" > "+args+"\necho 'Permission denied (publickey).' >&2\nexit 255\n")
	os.Chmod(script, 0o755)
	t.Setenv("GIT_SSH_COMMAND", script)
	os.Remove(filepath.Join(root, LockFile))
	_, err := resolve(t, root, t.TempDir(), Options{})
	wantError(t, err, `dep "lib" (imgbuild.mod:1:4): cannot reach the git repository git@git.example.com:acme/remote.git; git said:`, "Permission denied (publickey).")
	got, _ := os.ReadFile(args)
	if !strings.Contains(string(got), "git@git.example.com") || !strings.Contains(string(got), "'acme/remote.git'") {
		t.Errorf("ssh was run with %q", got)
	}
}

func TestAnUnreachableRepositoryIsNamedWithGitsMessage(t *testing.T) {
	testkit.RequireProgram(t, "git", "git")
	missing := filepath.Join(t.TempDir(), "no-such-repo.git")
	root := workspace(t, fmt.Sprintf("dep(\"platform\", git = %q, ref = \"v1\")\n", missing))
	_, err := resolve(t, root, t.TempDir(), Options{})
	wantError(t, err,
		`dep "platform" (imgbuild.mod:1:4): cannot reach the git repository `+missing+`; git said:`,
		`fatal: '`+missing+`' does not appear to be a git repository`)
}

func TestARefNotFoundListsTagsAndBranches(t *testing.T) {
	r := newRepo(t)
	r.Commit(map[string]string{"lib.star": ""})
	r.Tag("v1.0.0")
	r.Tag("v1.1.0")
	r.Git("", "branch", "release")
	r.Push()
	root := workspace(t, fmt.Sprintf("dep(\"lib\", git = %q, ref = \"v2.0.0\")\n", r.Bare))
	_, err := resolve(t, root, t.TempDir(), Options{})
	wantError(t, err, `dep "lib" (imgbuild.mod:1:4): `+r.Bare+` has no tag, branch or commit "v2.0.0"; tags: v1.0.0, v1.1.0; branches: main, release`)
}
