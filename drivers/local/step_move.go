package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/imgbuild/imgbuild/engine/event"
)

// stepMove moves the provisioned scratch directory into place as the output
// directory, in one rename. It makes the artifact: its cleanup, once the
// post-processors have run, removes the output directory only if the build
// failed and this build made it, and puts back the directory it replaced.
type stepMove struct {
	ui      *event.UI
	target  *target
	scratch *stepCreateScratch

	// outputs
	created bool   // this build made the output directory (so may remove it)
	aside   string // a replaced output directory, until the move succeeded
	staging string // a copy beside it, when scratch is on another file system
}

// renameScratch moves the provisioned directory into place; tests replace
// it to act out a scratch directory on another file system.
var renameScratch = os.Rename

// Name implements step.Step.
func (s *stepMove) Name() string { return "move to output directory" }

// MakesArtifact implements step.Artifact.
func (s *stepMove) MakesArtifact() bool { return true }

// Run puts the scratch directory in place of the output directory with a
// rename, so that the output directory is never half-written: a replaced
// one is moved aside first and put back if the move fails.
func (s *stepMove) Run(ctx context.Context) error {
	t := s.target
	parent := filepath.Dir(t.dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", t.display(parent), err)
	}
	if _, err := os.Lstat(t.dir); err == nil {
		aside, err := os.MkdirTemp(parent, "."+filepath.Base(t.dir)+".old-")
		if err != nil {
			return fmt.Errorf("moving the old %s aside: %w", t.shown, err)
		}
		if err := os.Rename(t.dir, filepath.Join(aside, "old")); err != nil {
			os.Remove(aside)
			return fmt.Errorf("moving the old %s aside: %w", t.shown, err)
		}
		s.aside = aside
	}
	err := renameScratch(s.scratch.dir, t.dir)
	if errors.Is(err, syscall.EXDEV) {
		// The scratch directory is on another file system: copy it beside
		// the output directory, then rename that.
		err = s.copyBeside(ctx)
	}
	if err != nil {
		s.restoreAside()
		return fmt.Errorf("moving the result into %s: %w", t.shown, err)
	}
	s.created = true
	if s.aside != "" {
		if err := os.RemoveAll(s.aside); err != nil {
			s.ui.Warn("could not remove the replaced output directory %s: %v", t.display(s.aside), err)
		}
		s.aside = ""
	}
	s.ui.Say("output directory %s", t.shown)
	return nil
}

func (s *stepMove) copyBeside(ctx context.Context) error {
	t := s.target
	staging, err := os.MkdirTemp(filepath.Dir(t.dir), "."+filepath.Base(t.dir)+".new-")
	if err != nil {
		return err
	}
	s.staging = staging
	from, err := os.OpenRoot(s.scratch.dir)
	if err != nil {
		return err
	}
	defer from.Close()
	to, err := os.OpenRoot(staging)
	if err != nil {
		return err
	}
	defer to.Close()
	if err := copyTree(ctx, from.FS(), to, nil); err != nil {
		return err
	}
	if err := os.Rename(staging, t.dir); err != nil {
		return err
	}
	s.staging = ""
	return os.RemoveAll(s.scratch.dir)
}

func (s *stepMove) restoreAside() {
	t := s.target
	if s.staging != "" {
		os.RemoveAll(s.staging)
		s.staging = ""
	}
	if s.aside == "" {
		return
	}
	if err := os.Rename(filepath.Join(s.aside, "old"), t.dir); err == nil {
		os.Remove(s.aside)
		s.aside = ""
	}
}

// Cleanup removes the output directory on failure, and only if this
// build made it.
func (s *stepMove) Cleanup(ctx context.Context, failed bool) error {
	t := s.target
	if !failed {
		return nil
	}
	s.restoreAside()
	if s.aside != "" {
		return fmt.Errorf("the replaced output directory could not be put back; it is in %s", t.display(s.aside))
	}
	if !s.created {
		return nil
	}
	if err := os.RemoveAll(t.dir); err != nil {
		return err
	}
	s.created = false
	return nil
}

// Leftovers implements step.Leaver.
func (s *stepMove) Leftovers() []string {
	t := s.target
	var left []string
	if s.created {
		left = append(left, "output directory "+t.shown)
	}
	if s.staging != "" {
		left = append(left, "staging directory "+t.display(s.staging))
	}
	if s.aside != "" {
		left = append(left, "replaced output directory "+t.display(s.aside))
	}
	return left
}
