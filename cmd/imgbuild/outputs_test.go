package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// What a build writes stays inside the workspace and replaces only what
// imgbuild made (issue 9); a second run of a description just works
// (issue 11).

func TestHelloRunsTwice(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, "../../examples", dir)
	for i := 1; i <= 2; i++ {
		code, out, errOut := imgbuild(t, dir, "run", "hello.star", "--no-color")
		if code != 0 {
			t.Fatalf("run %d: exit %d\nstdout:\n%s\nstderr:\n%s", i, code, out, errOut)
		}
	}
	for _, p := range []string{"output/base/etc/release", "output/web.sha256sum", "output/manifest.json"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("after two runs: %v", err)
		}
	}
	// Nothing was left beside the outputs: no temporary or replaced copy.
	entries, _ := os.ReadDir(filepath.Join(dir, "output"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "api api.sha256sum base manifest.json web web.sha256sum" {
		t.Errorf("output/ holds %s", got)
	}
}

func TestForeignContentIsRefusedWithItsPathEvenWithForce(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `local(name = "web", files = {"a": "a"})`})
	os.MkdirAll(filepath.Join(dir, "output/web"), 0o755)
	os.WriteFile(filepath.Join(dir, "output/web/notes.txt"), []byte("mine"), 0o644)
	code, out, _ := imgbuild(t, dir, "run", "images.star", "--no-color", "--force")
	if code != 1 || !strings.Contains(out, "output/web holds output/web/notes.txt, which imgbuild did not make: move it away or choose another output_directory (force replaces only what imgbuild made)") {
		t.Errorf("exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "output/web/notes.txt")); string(b) != "mine" {
		t.Error("the user's file is gone")
	}
}

func TestRunForceReplacesWhatImgbuildMadeForAnotherBuild(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{
		"old.star": `local(name = "web", output_directory = "out/site", files = {"v": "1"})`,
		"new.star": `local(name = "www", output_directory = "out/site", files = {"v": "2"})`,
	})
	if code, out, _ := imgbuild(t, dir, "run", "old.star", "--no-color"); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	code, out, _ := imgbuild(t, dir, "run", "new.star", "--no-color")
	want := `out/site was made by imgbuild for the build "web": set force = True (or run with --force) to replace it, or choose another output_directory`
	if code != 1 || !strings.Contains(out, want) {
		t.Errorf("without --force: exit %d\n%s", code, out)
	}
	if code, out, _ := imgbuild(t, dir, "run", "new.star", "--no-color", "--force"); code != 0 {
		t.Errorf("with --force: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out/site/v")); string(b) != "2" {
		t.Errorf("out/site/v = %q", b)
	}
}

func TestOutputsThatTouchWhatTheBuildDoesNotOwnAreRefusedAtValidation(t *testing.T) {
	for _, c := range []struct {
		name, src string
		want      []string
	}{
		{"a directory outside the workspace", `local(name = "web", output_directory = "../x", force = True)`,
			[]string{`images.star:1:21: local: for parameter output_directory: "../x" leads out of the workspace through "..": outputs go inside the workspace, such as "output/x"`}},
		{"an absolute path", `local(name = "web", output_directory = "/tmp/x")`,
			[]string{`images.star:1:21: local: for parameter output_directory: "/tmp/x" is absolute: outputs go inside the workspace; write a path relative to it, such as "output/x"`}},
		{"the description", `local(name = "web", post = [checksum(output = "images.star")])`,
			[]string{`images.star:1:37: checksum: for parameter output: "images.star" is a file of the description: choose another path`}},
		{"a loaded module's directory", "load(\"//lib/site.star\", \"x\")\nlocal(name = \"web\", output_directory = \"lib\")",
			[]string{`images.star:2:6: local: for parameter output_directory: "lib" holds lib/site.star, a file of the description: choose another path`}},
		{"imgbuild's own state", `local(name = "web", output_directory = ".imgbuild/web")`,
			[]string{`images.star:1:21: local: for parameter output_directory: ".imgbuild/web" is inside .imgbuild/, where imgbuild keeps its state and logs: choose another path, such as "output/web"`}},
		{"an input of another build", "local(name = \"web\", output_directory = \"files\")\nlocal(name = \"app\", provisioners = [file(source = \"files/app.conf\", destination = \"/etc/app.conf\")])",
			[]string{`images.star:1:6: local: for parameter output_directory: "files" holds files/app.conf, an input of build "app" (file at images.star:2:41, source): choose another path`}},
		{"two builds, one output", "local(name = \"a\", output_directory = \"out\")\nlocal(name = \"b\", output_directory = \"out\")",
			[]string{`images.star:2:6: local: for parameter output_directory: build "a" writes "out" too (local at images.star:1:6, output_directory): two builds may not write the same output`}},
		{"one inside another's", "local(name = \"a\", output_directory = \"out\")\nlocal(name = \"b\", post = [checksum(output = \"out/b.sum\")])",
			[]string{`images.star:2:35: checksum: for parameter output: "out/b.sum" is inside out, which build "a" writes (local at images.star:1:6, output_directory): two builds may not write one inside the other`}},
		{"every error, not only the first", "local(name = \"a\", output_directory = \"out\")\nlocal(name = \"b\", output_directory = \"out\", post = [checksum(output = \"images.star\")])",
			[]string{`images.star:2:6: local: for parameter output_directory: build "a" writes "out" too`, `images.star:2:61: checksum: for parameter output: "images.star" is a file of the description`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := testkit.Workspace(t, map[string]string{"images.star": c.src, "lib/site.star": "x = 1\n", "files/app.conf": "port = 80\n"})
			outside := filepath.Join(filepath.Dir(dir), "x")
			os.MkdirAll(outside, 0o755)
			os.WriteFile(filepath.Join(outside, "precious"), []byte("keep"), 0o644)
			for _, cmd := range []string{"validate", "plan", "run"} {
				code, _, errOut := imgbuild(t, dir, cmd, "images.star", "--no-color")
				if code != 2 {
					t.Errorf("%s: exit %d, want 2\n%s", cmd, code, errOut)
				}
				for _, w := range c.want {
					if !strings.Contains(errOut, w) {
						t.Errorf("%s: stderr lacks\n%s\ngot:\n%s", cmd, w, errOut)
					}
				}
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "images.star")); string(b) != c.src {
				t.Errorf("the description became %q", b)
			}
			if b, _ := os.ReadFile(filepath.Join(outside, "precious")); string(b) != "keep" {
				t.Error("a file outside the workspace is gone")
			}
		})
	}
}

func TestBuildsMayShareAManifest(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
local(name = "a", post = [manifest(output = "out/manifest.json")])
local(name = "b", post = [manifest(output = "out/manifest.json")])
`})
	if code, out, errOut := imgbuild(t, dir, "run", "images.star", "--no-color"); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestInputsNeverFollowALinkOutOfTheWorkspace(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	for _, c := range []struct{ name, src, want string }{
		{"file(source=)", `local(name = "web", provisioners = [file(source = "files/link", destination = "/x")])`,
			`images.star:1:42: file: for parameter source: "files/link" leads out of the workspace through the symbolic link files/link (→ ` + secret + `); descriptions may only read files inside the workspace`},
		{"a script", `local(name = "web", provisioners = [shell(script = "files/link")])`,
			`images.star:1:43: shell: for parameter script: "files/link" leads out of the workspace through the symbolic link files/link (→ ` + secret + `); descriptions may only read files inside the workspace`},
		{"load()", `load("//files/link.star", "x")`,
			`module //files/link.star: "files/link.star" leads out of the workspace through the symbolic link files/link.star (→ ` + secret + `); modules may only be read from inside the workspace`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := testkit.Workspace(t, map[string]string{"images.star": c.src, "files/inside": "ok\n"})
			os.Symlink(secret, filepath.Join(dir, "files/link"))
			os.Symlink(secret, filepath.Join(dir, "files/link.star"))
			code, _, errOut := imgbuild(t, dir, "validate", "images.star")
			if code != 2 || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant:\n%s", code, errOut, c.want)
			}
		})
	}
	// A link that stays inside is fine.
	dir := testkit.Workspace(t, map[string]string{"images.star": `local(name = "web", provisioners = [file(source = "files/link", destination = "/x")])`, "files/inside": "ok\n"})
	os.Symlink("inside", filepath.Join(dir, "files/link"))
	if code, out, errOut := imgbuild(t, dir, "run", "images.star", "--no-color"); code != 0 {
		t.Errorf("a link inside: exit %d\n%s\n%s", code, out, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "output/web/x")); string(b) != "ok\n" {
		t.Errorf("output/web/x = %q", b)
	}
}
