package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/imgbuild/imgbuild/engine/testkit"
	"go.starlark.net/starlark"
)

func newHost(root string) *Host {
	return &Host{
		Root:   root,
		Stdlib: fstest.MapFS{"apt.star": {Data: []byte("def apt(): return 'apt'\n")}},
	}
}

func TestLoadResolvesEveryLabelForm(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		"images.star":           "load('//lib/a.star', 'a')\nload('./lib/b.star', 'b')\nload('@stdlib//apt.star', 'apt')\nload('@shared//s.star', 's')\nresult = [a, b, apt(), s]\n",
		"lib/a.star":            "load('../lib/b.star', 'b')\na = 'a' + b\n",
		"lib/b.star":            "b = 'b'\n",
		"../shared-mods/s.star": "",
	})
	shared := t.TempDir()
	os.WriteFile(filepath.Join(shared, "s.star"), []byte("load('./t.star', 't')\ns = 's' + t\n"), 0o644)
	os.WriteFile(filepath.Join(shared, "t.star"), []byte("t = 't'\n"), 0o644)
	h := newHost(root)
	h.Modules = map[string]string{"shared": shared}
	g, err := h.Exec(filepath.Join(root, "images.star"))
	if err != nil {
		t.Fatal(err)
	}
	if got := g["result"].String(); got != `["ab", "b", "apt", "st"]` {
		t.Errorf("result = %s", got)
	}
}

func TestEachModuleEvaluatedOnce(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		"top.star": "load('//a.star', 'a')\nload('//b.star', 'b')\n",
		"a.star":   "load('//c.star', 'c')\na = 1\n",
		"b.star":   "load('//c.star', 'c')\nb = 1\n",
		"c.star":   "count()\nc = 1\n",
	})
	calls := 0
	h := newHost(root)
	h.Predeclared = starlark.StringDict{"count": starlark.NewBuiltin("count", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		calls++
		return starlark.None, nil
	})}
	if _, err := h.Exec(filepath.Join(root, "top.star")); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("c.star evaluated %d times, want 1", calls)
	}
}

func TestBadLoadsSayWhy(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"missing module", "load('//nope.star', 'x')", "top.star:1:1: cannot load //nope.star: module //nope.star not found"},
		{"outside workspace", "load('//../x.star', 'x')", "top.star:1:1: cannot load //../x.star: //../x.star leads outside the workspace"},
		{"relative outside workspace", "load('../../x.star', 'x')", "cannot load ../../x.star: ../../x.star leads outside the workspace"},
		{"absolute path", "load('/etc/x.star', 'x')", "cannot load /etc/x.star: absolute paths are not allowed: load modules with //path from the workspace root or ./path relative to this file"},
		{"undeclared module", "load('@teams//x.star', 'x')", "cannot load @teams//x.star: no module named \"teams\" is declared: imgbuild.mod declares none (add dep(name = \"teams\", git = ..., ref = ...) or dep(name = \"teams\", path = ...))"},
		{"missing stdlib module", "load('@stdlib//nope.star', 'x')", "cannot load @stdlib//nope.star: the standard library has no module nope.star (it has apt.star)"},
		{"not .star", "load('//x.py', 'x')", "cannot load //x.py: module names end in .star"},
		{"syntax error", "x = (1,\n", "top.star:2:1: syntax error: got end of file, want ')'"},
		{"undefined name", "y = x + 1", "top.star:1:5: undefined: x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := testkit.Workspace(t, map[string]string{"top.star": c.src})
			_, err := newHost(root).Exec(filepath.Join(root, "top.star"))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestLoadCycleShowsChain(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		"top.star": "load('//a.star', 'a')\n",
		"a.star":   "load('//b.star', 'b')\na = 1\n",
		"b.star":   "load('//a.star', 'a')\nb = 1\n",
	})
	_, err := newHost(root).Exec(filepath.Join(root, "top.star"))
	if err == nil || !strings.Contains(err.Error(), "load cycle: a.star → b.star → a.star") {
		t.Fatalf("error = %v", err)
	}
}

func TestErrorInLoadedModuleShowsBacktraceAcrossFiles(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		"top.star":         "load('//lib/helpers.star', 'harden')\nharden()\n",
		"lib/helpers.star": "def harden():\n    return inner()\n\ndef inner():\n    return 1 // 0\n",
	})
	_, err := newHost(root).Exec(filepath.Join(root, "top.star"))
	want := `lib/helpers.star:5:14: floored division by zero
backtrace (most recent call last):
  top.star:2:7: in <toplevel>
  lib/helpers.star:2:17: in harden
  lib/helpers.star:5:14: in inner`
	if err == nil || err.Error() != want {
		t.Fatalf("error =\n%v\nwant\n%s", err, want)
	}
}

func TestErrorDuringLoadNamesBothFiles(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		"top.star": "load('//lib.star', 'x')\n",
		"lib.star": "x = 1\nfail('lib is broken')\n",
	})
	_, err := newHost(root).Exec(filepath.Join(root, "top.star"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"lib.star:2:5: fail: lib is broken", "top.star:1:1: in <toplevel>", "lib.star:2:5: in <toplevel>"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error =\n%v\nwant it to contain %q", err, want)
		}
	}
}

func TestRunawayLoopIsStopped(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{"top.star": "x = 0\nwhile True:\n    x += 1\n"})
	h := newHost(root)
	h.MaxSteps = 10000
	_, err := h.Exec(filepath.Join(root, "top.star"))
	if err == nil || !strings.Contains(err.Error(), "too many steps") {
		t.Fatalf("error = %v", err)
	}
}

func TestFindRoot(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		"imgbuild.mod":     "module(name = \"web\")\n",
		"teams/web/x.star": "",
	})
	got, err := FindRoot(filepath.Join(root, "teams/web/x.star"))
	if err != nil || got != root {
		t.Fatalf("FindRoot = %q, %v; want %q", got, err, root)
	}
}
