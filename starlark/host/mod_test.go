package host

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

func TestParseModReadsEveryDeclaration(t *testing.T) {
	m, err := ParseMod(ModFile, []byte(`
module(name = "product-a")
dep("platform", git = "git@github.com:acme/platform.git", ref = "v1.2.0", path = "modules/")
dep(name = "base", url = "https://example.com/base-1.0.tar.gz", sha256 = "`+strings.Repeat("ab", 32)+`")
dep("local", path = "../shared")
state(location = "s3://bucket/prefix")
`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "product-a" || m.State != "s3://bucket/prefix" || len(m.Deps) != 3 {
		t.Fatalf("mod = %+v", m)
	}
	p := m.Deps[0]
	if p.Name != "platform" || p.Kind() != "git" || p.Git != "git@github.com:acme/platform.git" || p.Ref != "v1.2.0" || p.Path != "modules" || p.Pos != "imgbuild.mod:3:4" {
		t.Errorf("platform = %+v", p)
	}
	if b := m.Deps[1]; b.Kind() != "url" || b.SHA256 != strings.Repeat("ab", 32) {
		t.Errorf("base = %+v", b)
	}
	if l := m.Deps[2]; l.Kind() != "path" || l.Path != "../shared" || l.Source() != "path ../shared" {
		t.Errorf("local = %+v", l)
	}
}

func TestBadModSaysWhatToWrite(t *testing.T) {
	sha := strings.Repeat("0", 64)
	cases := map[string]string{
		`module(name = "x", path = "../x")`:                          `module: module(name, path) declares this module's own name now; a dependency is dep(name = ..., path = ...)`,
		`module(name = "X")`:                                         `module: name "X" must be lower-case letters`,
		"module(name = \"a\")\nmodule(name = \"b\")":                 `module: declared twice (first as "a")`,
		`dep("stdlib", path = "x")`:                                  `dep: name "stdlib" must be lower-case letters, digits, _ or -, start with a letter, and not be "stdlib"`,
		`dep("a")`:                                                   `dep "a": say where it comes from: git = URL and ref = tag, branch or commit; url = an archive and sha256; or path = a directory`,
		`dep("a", git = "https://h/r")`:                              `dep "a": git needs ref = a tag, branch or commit to take`,
		`dep("a", git = "--upload-pack=evil", ref = "main")`:         `dep "a": git "--upload-pack=evil" is not a repository URL`,
		`dep("a", git = "x", url = "https://h/a.tar.gz")`:            `dep "a": give git or url, not both`,
		`dep("a", url = "ftp://h/a.tar.gz", sha256 = "` + sha + `")`: `dep "a": url "ftp://h/a.tar.gz": give an https:// (or http://) address of a .tar.gz archive`,
		`dep("a", url = "https://h/a.tar.gz")`:                       `dep "a": url needs sha256 = the archive's sha256 in hex (64 characters; sha256sum prints it), got ""`,
		`dep("a", git = "x", ref = "v1", path = "../up")`:            `dep "a": path "../up" must be a directory inside the repository, written with /`,
		`dep("a", path = "x", ref = "v1")`:                           `dep "a": a path dependency takes no ref or sha256`,
		"dep(\"a\", path = \"x\")\ndep(\"a\", path = \"y\")":         `imgbuild.mod:2:4: dep: "a" is declared twice (first at imgbuild.mod:1:4)`,
		`dep("a", path = "x", tag = "v1")`:                           `dep: unexpected keyword argument "tag"`,
		`state(location = "")`:                                       `state: location is empty`,
	}
	for src, want := range cases {
		_, err := ParseMod(ModFile, []byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n error = %v\n want  %s", src, err, want)
		}
	}
}

// TestEachModuleLoadsItsOwnDepsByItsOwnNames: @name// resolves per
// module, so two modules may call different modules by one name.
func TestEachModuleLoadsItsOwnDepsByItsOwnNames(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		"top.star":             "load('@lib//a.star', 'a')\nload('@sec//s.star', 's')\nresult = [a, s]\n",
		"mods/lib1/a.star":     "a = 'lib1'\n",
		"mods/lib2/a.star":     "a = 'lib2'\n",
		"mods/security/s.star": "load('@lib//a.star', 'a')\ns = 'security sees ' + a\n",
	})
	h := newHost(root)
	h.Modules = map[string]string{"lib1": filepath.Join(root, "mods/lib1"), "lib2": filepath.Join(root, "mods/lib2"), "security": filepath.Join(root, "mods/security")}
	h.Deps = map[string]map[string]string{
		"":         {"lib": "lib1", "sec": "security"},
		"security": {"lib": "lib2"},
	}
	g, err := h.Exec(filepath.Join(root, "top.star"))
	if err != nil {
		t.Fatal(err)
	}
	if got := g["result"].String(); got != `["lib1", "security sees lib2"]` {
		t.Errorf("result = %s", got)
	}
	if got := strings.Join(h.Loaded(), " "); !strings.Contains(got, "@lib1//a.star") || !strings.Contains(got, "@lib2//a.star") {
		t.Errorf("loaded: %s", got)
	}
}

func TestUndeclaredModuleListsTheDeclaredOnes(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		"top.star":           "load('@platfrom//x.star', 'x')\n",
		"other.star":         "load('@sec//s.star', 's')\n",
		"mods/sec/s.star":    "load('@lib//a.star', 'a')\n",
		"mods/lonely/s.star": "load('@lib//a.star', 'a')\n",
	})
	h := newHost(root)
	h.Modules = map[string]string{"security": filepath.Join(root, "mods/sec"), "platform": filepath.Join(root, "mods")}
	h.Deps = map[string]map[string]string{"": {"platform": "platform", "sec": "security"}, "security": {"users": "platform", "base": "platform"}}
	_, err := h.Exec(filepath.Join(root, "top.star"))
	want := `top.star:1:1: cannot load @platfrom//x.star: no module named "platfrom" is declared in imgbuild.mod (declared: platform, sec)`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant %s", err, want)
	}
	_, err = h.Exec(filepath.Join(root, "other.star"))
	want = `cannot load @lib//a.star: module security declares no dependency named "lib" in its imgbuild.mod (it declares: base, users)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v\nwant %s", err, want)
	}
}

func TestLoadCycleAcrossModulesShowsTheChain(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		"top.star":      "load('@a//a.star', 'a')\n",
		"mods/a/a.star": "load('@b//b.star', 'b')\na = 1\n",
		"mods/b/b.star": "load('@a//a.star', 'a')\nb = 1\n",
	})
	h := newHost(root)
	h.Modules = map[string]string{"a": filepath.Join(root, "mods/a"), "b": filepath.Join(root, "mods/b")}
	h.Deps = map[string]map[string]string{"": {"a": "a"}, "a": {"b": "b"}, "b": {"a": "a"}}
	_, err := h.Exec(filepath.Join(root, "top.star"))
	if err == nil || !strings.Contains(err.Error(), "load cycle: @a//a.star → @b//b.star → @a//a.star") {
		t.Fatalf("error = %v", err)
	}
}
