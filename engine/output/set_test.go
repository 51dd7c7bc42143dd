package output

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestOutputPathsStayInsideTheWorkspace(t *testing.T) {
	top := t.TempDir()
	ws := filepath.Join(top, "ws")
	os.MkdirAll(filepath.Join(ws, "sub"), 0o755)
	os.MkdirAll(filepath.Join(top, "elsewhere"), 0o755)
	os.Symlink(filepath.Join(top, "elsewhere"), filepath.Join(ws, "out"))
	os.Symlink("../.imgbuild", filepath.Join(ws, "sub/state"))
	os.Symlink("sub", filepath.Join(ws, "inside"))
	for rel, want := range map[string]string{
		"":                 `is empty: name a path inside the workspace, such as "output/web"`,
		"/tmp/x":           `"/tmp/x" is absolute: outputs go inside the workspace; write a path relative to it, such as "output/x"`,
		"../x":             `"../x" leads out of the workspace through "..": outputs go inside the workspace, such as "output/x"`,
		"sub/../../x":      `"sub/../../x" leads out of the workspace through "..": outputs go inside the workspace, such as "output/x"`,
		"out/web":          `"out/web" leads out of the workspace through the symbolic link out (→ ` + top + `/elsewhere): outputs go inside the workspace, such as "output/web"`,
		".":                `"." is the workspace itself: outputs go in a directory inside it, such as "output/web"`,
		"sub/..":           `"sub/.." is the workspace itself: outputs go in a directory inside it, such as "output/web"`,
		".imgbuild/x":      `".imgbuild/x" is inside .imgbuild/, where imgbuild keeps its state and logs: choose another path, such as "output/x"`,
		"sub/state/x.json": `"sub/state/x.json" is inside .imgbuild/ (it leads to .imgbuild/x.json), where imgbuild keeps its state and logs: choose another path, such as "output/x.json"`,
	} {
		_, err := CheckPath(ws, rel)
		if err == nil || err.Error() != want {
			t.Errorf("CheckPath(%q) = %v\nwant %s", rel, err, want)
		}
	}
	if got, err := CheckPath(ws, "inside/web"); err != nil || got != "sub/web" {
		t.Errorf("a link that stays inside: %q, %v", got, err)
	}
}

func TestAnOutputFileReplacesOnlyImgbuildsOwn(t *testing.T) {
	ws := t.TempDir()
	s := NewSet(ws, "web", false)
	if _, err := s.WriteFile("web.sha256sum", "output", []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Finish(false)
	// The next run of the same build replaces it without asking.
	s = NewSet(ws, "web", false)
	if _, err := s.WriteFile("web.sha256sum", "output", []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Finish(false)
	if got := read(t, filepath.Join(ws, "web.sha256sum")); got != "two\n" {
		t.Errorf("got %q", got)
	}
	// A description the user wrote is never replaced, force or not.
	os.WriteFile(filepath.Join(ws, "images.star"), []byte("local(name = \"x\")\n"), 0o644)
	s = NewSet(ws, "web", true)
	_, err := s.WriteFile("images.star", "output", []byte("sums\n"), 0o644)
	if err == nil || err.Error() != "images.star exists and imgbuild did not make it: move it away or choose another output (force replaces only what imgbuild made)" {
		t.Errorf("got %v", err)
	}
	if got := read(t, filepath.Join(ws, "images.star")); got != "local(name = \"x\")\n" {
		t.Errorf("the description became %q", got)
	}
	if entries, _ := os.ReadDir(ws); len(entries) != 3 {
		t.Errorf("left in the workspace: %v", entries)
	}
}

func TestAFailedBuildRemovesItsNewFileAndPutsTheOldBack(t *testing.T) {
	ws := t.TempDir()
	s := NewSet(ws, "web", false)
	s.WriteFile("out/web.box", "output", []byte("old box"), 0o644)
	s.Finish(false)

	s = NewSet(ws, "web", false)
	f, err := s.Create("out/web.box", "output")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("new box")
	if _, err := f.Place(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(ws, "out/web.box")); got != "new box" {
		t.Fatalf("placed: %q", got)
	}
	left := strings.Join(s.Leftovers(), "; ")
	if !strings.HasPrefix(left, "output out/web.box; replaced output out/.web.box.imgbuild-old-") {
		t.Errorf("leftovers: %s", left)
	}
	if err := s.Finish(true); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(ws, "out/web.box")); got != "old box" {
		t.Errorf("after the failure: %q", got)
	}
	if entries, _ := os.ReadDir(filepath.Join(ws, "out")); len(entries) != 1 {
		t.Errorf("left in out/: %v", entries)
	}
}

func TestADirectoryPlacedWholeReplacesTheBuildsOwn(t *testing.T) {
	ws := t.TempDir()
	for i, content := range []string{"first", "second"} {
		scratch := filepath.Join(t.TempDir(), "root")
		os.MkdirAll(filepath.Join(scratch, "etc"), 0o755)
		os.WriteFile(filepath.Join(scratch, "etc/release"), []byte(content), 0o644)
		s := NewSet(ws, "base", false)
		_, err := s.PlaceDir(scratch, "output/base", "output_directory")
		if errors.Is(err, syscall.EXDEV) {
			st, serr := s.StageDir("output/base", "output_directory")
			if serr != nil {
				t.Fatal(serr)
			}
			os.MkdirAll(filepath.Join(st.Path(), "etc"), 0o755)
			os.WriteFile(filepath.Join(st.Path(), "etc/release"), []byte(content), 0o644)
			_, err = st.Place()
		}
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if err := s.Finish(false); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(t, filepath.Join(ws, "output/base/etc/release")); got != "second" {
		t.Errorf("got %q", got)
	}
}

func TestSharedFilesKeepEveryWritersChange(t *testing.T) {
	ws := t.TempDir()
	s := NewSet(ws, "web", false)
	add := func(line string) func([]byte) ([]byte, error) {
		return func(old []byte) ([]byte, error) { return append(bytes.Clone(old), line...), nil }
	}
	if err := s.Update("manifest.json", "output", add("web\n")); err != nil {
		t.Fatal(err)
	}
	// Another writer changes the file between this one's read and write:
	// its change is kept, and this one's is made again on top.
	calls := 0
	err := s.Update("manifest.json", "output", func(old []byte) ([]byte, error) {
		calls++
		if calls == 1 {
			if err := NewSet(ws, "api", false).Update("manifest.json", "output", add("api\n")); err != nil {
				t.Fatal(err)
			}
		}
		return append(bytes.Clone(old), "db\n"...), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(ws, "manifest.json")); got != "web\napi\ndb\n" || calls != 2 {
		t.Errorf("got %q after %d calls", got, calls)
	}
	// A link out of the workspace is not written through.
	os.Symlink("/etc/passwd", filepath.Join(ws, "link.json"))
	err = s.Update("link.json", "output", add("x"))
	if err == nil || !strings.Contains(err.Error(), `"link.json" leads out of the workspace through the symbolic link link.json`) {
		t.Errorf("through a link: %v", err)
	}
}
