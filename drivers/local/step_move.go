package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/output"
)

// stepMove moves the provisioned scratch directory into place as the output
// directory, in one rename (output.Set.PlaceDir), so that it is never
// half-written. It makes the artifact: its cleanup, once the
// post-processors have run, keeps the output directory and removes the one
// it replaced, or, when the build failed, removes it and puts the replaced
// one back.
type stepMove struct {
	ui      *event.UI
	target  *target
	scratch *stepCreateScratch

	// outputs
	placed bool // the output directory is in place
}

// placeScratch moves the provisioned directory into place; tests replace
// it to act out a scratch directory on another file system.
var placeScratch = (*output.Set).PlaceDir

// Name implements step.Step.
func (s *stepMove) Name() string { return "move to output directory" }

// MakesArtifact implements step.Artifact.
func (s *stepMove) MakesArtifact() bool { return true }

// Run implements step.Step.
func (s *stepMove) Run(ctx context.Context) error {
	t := s.target
	_, err := placeScratch(t.outs, s.scratch.dir, t.rel, "output_directory")
	if errors.Is(err, syscall.EXDEV) {
		// The scratch directory is on another file system: copy it beside
		// the output directory, then rename that.
		err = s.copyBeside(ctx)
	}
	if err != nil {
		return err
	}
	s.placed = true
	s.ui.Say("output directory %s", t.rel)
	return nil
}

func (s *stepMove) copyBeside(ctx context.Context) error {
	t := s.target
	if _, err := t.outs.WriteDir(t.rel, "output_directory", func(dir string) error {
		if err := copyDir(ctx, s.scratch.dir, dir); err != nil {
			return fmt.Errorf("copying the result to %s: %w", t.rel, err)
		}
		return nil
	}); err != nil {
		return err
	}
	return os.RemoveAll(s.scratch.dir)
}

// Cleanup implements step.Cleaner.
func (s *stepMove) Cleanup(ctx context.Context, failed bool) error {
	if !s.placed {
		return nil
	}
	s.placed = false
	return s.target.outs.FinishPath(s.target.rel, failed)
}

// Leftovers implements step.Leaver.
func (s *stepMove) Leftovers() []string {
	if !s.placed {
		return nil
	}
	return s.target.outs.Leftovers()
}

// copyDir copies the tree of the directory from into the directory to.
func copyDir(ctx context.Context, from, to string) error {
	src, err := os.OpenRoot(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenRoot(to)
	if err != nil {
		return err
	}
	defer dst.Close()
	return copyTree(ctx, src.FS(), dst, nil)
}
