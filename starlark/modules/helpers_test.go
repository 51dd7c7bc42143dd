package modules

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/modules/modtest"
)

// newRepo makes an empty repository; its default branch is main.
func newRepo(t *testing.T) *modtest.Repo { return modtest.NewRepo(t) }

// workspace writes a workspace whose imgbuild.mod is mod.
func workspace(t *testing.T, mod string) string {
	t.Helper()
	return testkit.Workspace(t, map[string]string{"imgbuild.mod": mod})
}

// libAtV1 makes a repository whose lib.star (src) is tagged v1, and a
// workspace with the dependency lib on it at v1.
func libAtV1(t *testing.T, src string) (r *modtest.Repo, root string) {
	t.Helper()
	r = newRepo(t)
	r.Commit(map[string]string{"lib.star": src})
	r.Tag("v1")
	return r, workspace(t, fmt.Sprintf("dep(\"lib\", git = %q, ref = \"v1\")\n", r.Bare))
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
