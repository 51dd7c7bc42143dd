package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgbuild/imgbuild/engine/event"
)

// A step built and run alone: its input, the scratch directory, is a
// literal of the step that makes it.
func TestMoveAloneReplacesTheOutputAndRemovesItOnFailure(t *testing.T) {
	ws := t.TempDir()
	dir := filepath.Join(ws, "output", "web")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "old.txt"), []byte("the last run's"), 0o644)
	scratch := t.TempDir()
	os.WriteFile(filepath.Join(scratch, "new.txt"), []byte("this run's"), 0o644)

	s := &stepMove{
		ui:      event.NewUI(nil, "web", "local"),
		target:  &target{workspace: ws, dir: dir, shown: "output/web"},
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
	if left := s.Leftovers(); len(left) != 1 || left[0] != "output directory output/web" {
		t.Errorf("leftovers: %q", left)
	}
	// A post-processor failed: the output this build made goes.
	if err := s.Cleanup(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the output directory is still there after a failed build: %v", err)
	}
}
