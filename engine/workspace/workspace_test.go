package workspace

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// tree makes a workspace with a file, a directory, links that stay inside
// and links that lead out, next to a directory outside it.
func tree(t testing.TB) (ws, outside string) {
	t.Helper()
	top := t.TempDir()
	ws, outside = filepath.Join(top, "ws"), filepath.Join(top, "outside")
	for _, d := range []string{ws + "/files/etc", outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(ws+"/files/etc/app.conf", []byte("port = 80\n"), 0o644)
	os.WriteFile(outside+"/secret", []byte("s3cret\n"), 0o600)
	links := map[string]string{
		"files/conf":   "etc/app.conf",         // inside, relative
		"files/abs":    ws + "/files/etc",      // inside, absolute
		"files/up":     "../files/etc",         // inside, climbing
		"files/secret": outside + "/secret",    // out, absolute
		"files/climb":  "../../outside/secret", // out, relative
		"files/viadir": "../files/escape",      // a link to a link out
		"files/escape": outside,
		"files/loop":   "loop",
		"out":          outside,
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(ws, name)); err != nil {
			t.Fatal(err)
		}
	}
	return ws, outside
}

func TestALinkThatStaysInsideIsFollowed(t *testing.T) {
	ws, _ := tree(t)
	for rel, want := range map[string]string{
		"files/conf":         "files/etc/app.conf",
		"files/abs/app.conf": "files/etc/app.conf",
		"files/up/app.conf":  "files/etc/app.conf",
		"files/etc/new/x":    "files/etc/new/x", // not there yet: as written
		"files/../files/etc": "files/etc",
		".":                  ".",
	} {
		got, err := Resolve(ws, rel)
		if err != nil || filepath.ToSlash(got) != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", rel, got, err, want)
		}
	}
	b, err := ReadFile(ws, "files/conf")
	if err != nil || string(b) != "port = 80\n" {
		t.Errorf("ReadFile through an inside link: %q, %v", b, err)
	}
}

func TestALinkThatLeadsOutIsNamed(t *testing.T) {
	ws, outside := tree(t)
	for rel, want := range map[string]string{
		"files/secret":      `"files/secret" leads out of the workspace through the symbolic link files/secret (→ ` + outside + `/secret)`,
		"files/climb":       `"files/climb" leads out of the workspace through the symbolic link files/climb (→ ../../outside/secret)`,
		"files/viadir/x":    `"files/viadir/x" leads out of the workspace through the symbolic link files/escape (→ ` + outside + `)`,
		"out/new/file":      `"out/new/file" leads out of the workspace through the symbolic link out (→ ` + outside + `)`,
		"../outside":        `"../outside" leads out of the workspace through ".."`,
		"files/../../x":     `"files/../../x" leads out of the workspace through ".."`,
		outside + "/secret": `"` + outside + `/secret" is outside the workspace`,
	} {
		_, err := Resolve(ws, rel)
		var esc *EscapeError
		if !errors.As(err, &esc) || err.Error() != want {
			t.Errorf("Resolve(%q) = %v\nwant %s", rel, err, want)
		}
		if _, err := ReadFile(ws, rel); err == nil {
			t.Errorf("ReadFile(%q) read outside the workspace", rel)
		}
	}
	if _, err := Resolve(ws, "files/loop"); err == nil || err.Error() != `"files/loop": too many levels of symbolic links` {
		t.Errorf("a loop: %v", err)
	}
}
