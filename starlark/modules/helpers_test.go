package modules

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// repo is a git repository made by a test: a working copy whose commits
// are pushed to a bare repository, the URL dependencies name.
type repo struct {
	t          *testing.T
	work, bare string
}

// newRepo makes an empty repository; its default branch is main.
func newRepo(t *testing.T) *repo {
	t.Helper()
	testkit.RequireProgram(t, "git", "git")
	dir := t.TempDir()
	r := &repo{t: t, work: filepath.Join(dir, "work"), bare: filepath.Join(dir, "remote.git")}
	r.git("", "init", "--quiet", "--bare", "--initial-branch=main", r.bare)
	r.git("", "init", "--quiet", "--initial-branch=main", r.work)
	return r
}

// git runs git in dir ("" for the working copy) with a fixed identity
// and no user configuration.
func (r *repo) git(dir string, args ...string) string {
	r.t.Helper()
	if dir == "" {
		dir = r.work
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

// commit writes files (a "" content removes the file), commits them on
// the current branch, pushes every branch and tag, and returns the commit.
func (r *repo) commit(files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.work, filepath.FromSlash(name))
		if content == "" {
			os.Remove(p)
			continue
		}
		testkit.WriteFile(r.t, p, content)
	}
	r.git("", "add", "-A")
	r.git("", "commit", "--quiet", "--allow-empty", "-m", "change")
	r.push()
	return r.git("", "rev-parse", "HEAD")
}

func (r *repo) push() {
	r.git("", "push", "--quiet", "--force", "--all", r.bare)
	r.git("", "push", "--quiet", "--force", "--tags", r.bare)
}

// tag tags the current commit (annotated, as releases are) and pushes it.
func (r *repo) tag(name string) {
	r.t.Helper()
	r.git("", "tag", "-a", "-m", name, name)
	r.push()
}

// workspace writes a workspace whose imgbuild.mod is mod.
func workspace(t *testing.T, mod string) string {
	t.Helper()
	return testkit.Workspace(t, map[string]string{"imgbuild.mod": mod})
}

// resolve resolves root's modules with a cache of the test's own.
func resolve(t *testing.T, root, cache string, opts Options) (*Graph, error) {
	t.Helper()
	opts.Root = root
	opts.Cache = &Cache{Dir: cache}
	return Resolve(context.Background(), opts)
}

// mustResolve is resolve, failing the test on an error, and writes the
// lock as imgbuild mod download does.
func mustResolve(t *testing.T, root, cache string, opts Options) *Graph {
	t.Helper()
	g, err := resolve(t, root, cache, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteLock(root, g.Lock); err != nil {
		t.Fatal(err)
	}
	return g
}

// read returns a module's file.
func read(t *testing.T, g *Graph, module, file string) string {
	t.Helper()
	m, ok := g.Modules[module]
	if !ok {
		t.Fatalf("no module %s in %v", module, g.names())
	}
	data, err := os.ReadFile(filepath.Join(m.Dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// wantError fails unless err's message holds every part of want.
func wantError(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one saying %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
		}
	}
}
