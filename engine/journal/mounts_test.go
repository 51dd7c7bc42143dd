package journal

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// TestAKilledBuildsMountsAreUnmountedAndOnlyItsFilesRemoved plays a build
// killed with a directory of this machine bound into its scratch tree (as a
// chroot binds /dev) and a tmpfs over it (as an image test's overlay): the
// reaper unmounts both, removes the scratch directory, and the bound
// directory's own files are untouched.
func TestAKilledBuildsMountsAreUnmountedAndOnlyItsFilesRemoved(t *testing.T) {
	testkit.RequireRoot(t)
	theirs := t.TempDir()
	keep := filepath.Join(theirs, "keep.txt")
	if err := os.WriteFile(keep, []byte("not imgbuild's"), 0o644); err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(t.TempDir(), "imgbuild-web-1234")
	bound, overlay := filepath.Join(scratch, "tree", "dev"), filepath.Join(scratch, "test", "merged")
	for _, d := range []string{bound, overlay} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mount(theirs, bound, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	if err := syscall.Mount("tmpfs", overlay, "tmpfs", 0, ""); err != nil {
		syscall.Unmount(bound, syscall.MNT_DETACH)
		t.Fatalf("tmpfs: %v", err)
	}
	t.Cleanup(func() {
		syscall.Unmount(overlay, syscall.MNT_DETACH)
		syscall.Unmount(bound, syscall.MNT_DETACH)
	})
	e := Entry{Kind: KindDir, What: "scratch directory " + scratch, Where: map[string]string{"path": scratch}}
	if err := (dirReaper{}).Remove(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if m, _ := MountsUnder(scratch); len(m) > 0 {
		t.Errorf("still mounted: %v", m)
	}
	if _, err := os.Lstat(scratch); !os.IsNotExist(err) {
		t.Errorf("the scratch directory is still there: %v", err)
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "not imgbuild's" {
		t.Errorf("the bound directory's file: %q, %v", b, err)
	}
}
