package workspace

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzResolveNeverLeavesTheWorkspace: whatever path it is given, Resolve
// either names a path inside the workspace or says it leads out; and
// where it says a path stays inside, os.Root agrees.
func FuzzResolveNeverLeavesTheWorkspace(f *testing.F) {
	for _, s := range []string{"files/conf", "files/abs/app.conf", "files/up/../etc", "files/climb", "files/viadir/x", "out/new", "../x", "a/../../b", ".", "files/loop", "//x", "files/etc/../../out/x"} {
		f.Add(s)
	}
	ws, _ := tree(f)
	f.Fuzz(func(t *testing.T, rel string) {
		got, err := Resolve(ws, rel)
		var esc *EscapeError
		if err != nil {
			if errors.As(err, &esc) && esc.Link != "" && strings.HasPrefix(esc.Link, "..") {
				t.Errorf("Resolve(%q) names a link outside: %v", rel, err)
			}
			return
		}
		if filepath.IsAbs(got) || got == ".." || strings.HasPrefix(got, ".."+string(filepath.Separator)) {
			t.Fatalf("Resolve(%q) = %q, outside the workspace", rel, got)
		}
		if f, err := Open(ws, rel); err == nil {
			f.Close()
		} else if errors.As(err, &esc) {
			t.Errorf("Resolve(%q) = %q but Open says %v", rel, got, err)
		}
	})
}
