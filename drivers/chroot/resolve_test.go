package chroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveFollowsLinksAsTheChrootWould(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755)
	os.MkdirAll(filepath.Join(root, "run"), 0o755)
	os.Symlink("usr/lib", filepath.Join(root, "lib"))
	os.Symlink("/run", filepath.Join(root, "usr/run"))
	os.Symlink("loop2", filepath.Join(root, "loop1"))
	os.Symlink("loop1", filepath.Join(root, "loop2"))
	c := &Comm{root: root}
	for in, want := range map[string]string{
		"/lib/x":          "usr/lib/x",
		"lib/../etc":      "etc",
		"/usr/run/a":      "run/a",
		"/../../etc/pw":   "etc/pw",
		"/":               "",
		"/lib":            "usr/lib",
		"/missing/../lib": "usr/lib",
	} {
		got, err := c.resolve(in, true)
		if err != nil {
			t.Errorf("resolve(%q): %v", in, err)
			continue
		}
		if got != filepath.Join(root, want) {
			t.Errorf("resolve(%q) = %q, want <root>/%s", in, got, want)
		}
	}
	if got, _ := c.resolve("/lib", false); got != filepath.Join(root, "lib") {
		t.Errorf("resolve without the last element: %q", got)
	}
	if _, err := c.resolve("/loop1/x", true); err == nil || !strings.Contains(err.Error(), "too many levels of symbolic links") {
		t.Errorf("a loop: %v", err)
	}
}

// FuzzResolveStaysInTheTree checks that no path, through no symbolic link,
// resolves outside the tree.
func FuzzResolveStaysInTheTree(f *testing.F) {
	f.Add("/etc/passwd", "../../../..")
	f.Add("a/b/../../../c", "/")
	f.Add("link/../../x", "/proc/self/root")
	f.Add("link/link/link", "link")
	f.Add("", "")
	root := f.TempDir()
	os.MkdirAll(filepath.Join(root, "a/b"), 0o755)
	link := filepath.Join(root, "link")
	f.Fuzz(func(t *testing.T, p, target string) {
		os.Remove(link)
		if target != "" && !strings.ContainsRune(target, 0) {
			os.Symlink(target, link)
		}
		c := &Comm{root: root}
		for _, last := range []bool{true, false} {
			got, err := c.resolve(p, last)
			if err != nil {
				continue
			}
			if got != root && !strings.HasPrefix(got, root+"/") {
				t.Fatalf("resolve(%q) with link -> %q = %q: outside %s", p, target, got, root)
			}
		}
	})
}
