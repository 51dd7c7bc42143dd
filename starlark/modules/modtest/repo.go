// Package modtest makes the git repositories that tests of modules depend
// on, with Debian's git: a working copy whose commits and tags are pushed
// to a bare repository, the URL a dep(git = ...) names.
package modtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// Repo is a git repository made by a test.
type Repo struct {
	t testing.TB
	// Work is the working copy; Bare the bare repository commits are
	// pushed to.
	Work, Bare string
}

// NewRepo makes an empty repository in a temporary directory; its default
// branch is main. The test is skipped (failed under
// IMGBUILD_INTEGRATION=1) when git is not installed.
func NewRepo(t testing.TB) *Repo {
	t.Helper()
	return NewRepoAt(t, filepath.Join(t.TempDir(), "remote.git"))
}

// NewRepoAt is NewRepo with the bare repository at bare (its working copy
// in a temporary directory).
func NewRepoAt(t testing.TB, bare string) *Repo {
	t.Helper()
	testkit.RequireProgram(t, "git", "git")
	r := &Repo{t: t, Work: filepath.Join(t.TempDir(), "work"), Bare: bare}
	r.Git("", "init", "--quiet", "--bare", "--initial-branch=main", r.Bare)
	r.Git("", "init", "--quiet", "--initial-branch=main", r.Work)
	return r
}

// Git runs git in dir ("" for the working copy) with a fixed identity and
// no user or system configuration, and returns its output, trimmed; a
// failure fails the test.
func (r *Repo) Git(dir string, args ...string) string {
	r.t.Helper()
	if dir == "" {
		dir = r.Work
	}
	cmd := exec.Command("git", append([]string{"-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
	if _, err := os.Stat(dir); err == nil {
		cmd.Dir = dir
	}
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit writes files (slash-separated path → content; "" removes the
// file), commits them on the current branch, pushes every branch and tag,
// and returns the commit.
func (r *Repo) Commit(files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.Work, filepath.FromSlash(name))
		if content == "" {
			os.Remove(p)
			continue
		}
		testkit.WriteFile(r.t, p, content)
	}
	r.Git("", "add", "-A")
	r.Git("", "commit", "--quiet", "--allow-empty", "-m", "change")
	r.Push()
	return r.Git("", "rev-parse", "HEAD")
}

// Push pushes every branch and tag to the bare repository, forced (a test
// may rewrite history).
func (r *Repo) Push() {
	r.t.Helper()
	r.Git("", "push", "--quiet", "--force", "--all", r.Bare)
	r.Git("", "push", "--quiet", "--force", "--tags", r.Bare)
}

// Tag tags the current commit (annotated, as releases are) and pushes it.
func (r *Repo) Tag(name string) {
	r.t.Helper()
	r.Git("", "tag", "-a", "-m", name, name)
	r.Push()
}
