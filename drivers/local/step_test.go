package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/output"
)

// A step built and run alone: its input, the scratch directory, is a
// literal of the step that makes it.
func TestMoveAloneReplacesTheOutputAndPutsItBackOnFailure(t *testing.T) {
	ws := t.TempDir()
	dir := filepath.Join(ws, "output", "web")
	// The last run's output, recorded as the build's.
	last := t.TempDir()
	os.WriteFile(filepath.Join(last, "old.txt"), []byte("the last run's"), 0o644)
	prev := output.NewSet(ws, "web", false)
	if _, err := prev.PlaceDir(last, "output/web", "output_directory"); err != nil {
		t.Fatal(err)
	}
	prev.Finish(false)
	scratch := t.TempDir()
	os.WriteFile(filepath.Join(scratch, "new.txt"), []byte("this run's"), 0o644)

	s := &stepMove{
		ui:      event.NewUI(nil, "web", "local"),
		target:  &target{outs: output.NewSet(ws, "web", false), rel: "output/web"},
		scratch: &stepCreateScratch{dir: scratch},
	}
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "new.txt")); err != nil || string(got) != "this run's" {
		t.Fatalf("after the move: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "old.txt")); !os.IsNotExist(err) {
		t.Errorf("the replaced directory's file is still there: %v", err)
	}
	if left := s.Leftovers(); len(left) != 2 || left[0] != "output output/web" || !strings.HasPrefix(left[1], "replaced output output/.web.imgbuild-old-") {
		t.Errorf("leftovers: %q", left)
	}
	// A post-processor failed: the output this build made goes, and the
	// one it replaced comes back.
	if err := s.Cleanup(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "old.txt")); err != nil || string(got) != "the last run's" {
		t.Errorf("after a failed build: %q, %v", got, err)
	}
}
