package modules

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// TestHashTreeIsTheDocumentedManifest: the hash is the SHA-256 of the
// manifest HashTree's doc defines, written out here by hand.
func TestHashTreeIsTheDocumentedManifest(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"b.star": "b\n", "a/x.sh": "#!/bin/sh\n", ".git/HEAD": "ignored"})
	os.Chmod(filepath.Join(dir, "a/x.sh"), 0o755)
	os.Symlink("b.star", filepath.Join(dir, "c.star"))
	os.Mkdir(filepath.Join(dir, "empty"), 0o755)
	s := func(b string) string { h := sha256.Sum256([]byte(b)); return hex.EncodeToString(h[:]) }
	manifest := "x " + s("#!/bin/sh\n") + " a/x.sh\n" + "f " + s("b\n") + " b.star\n" + "l " + s("b.star") + " c.star\n"
	got, err := HashTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "sha256:" + s(manifest); got != want {
		t.Errorf("HashTree = %s, want %s", got, want)
	}
}

func TestHashTreeSeesContentNamesAndExecBitsNotTimes(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"a.star": "a\n"})
	base, _ := HashTree(dir)
	os.Chtimes(filepath.Join(dir, "a.star"), time.Unix(1, 0), time.Unix(1, 0))
	os.Chmod(filepath.Join(dir, "a.star"), 0o600)
	if h, _ := HashTree(dir); h != base {
		t.Error("times or read/write bits changed the hash")
	}
	os.Chmod(filepath.Join(dir, "a.star"), 0o700)
	if h, _ := HashTree(dir); h == base {
		t.Error("the executable bit did not change the hash")
	}
	os.Chmod(filepath.Join(dir, "a.star"), 0o644)
	os.Rename(filepath.Join(dir, "a.star"), filepath.Join(dir, "b.star"))
	if h, _ := HashTree(dir); h == base {
		t.Error("a rename did not change the hash")
	}
}
