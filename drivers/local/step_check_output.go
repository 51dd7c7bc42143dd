package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// stepCheckOutput refuses an output directory that would hold the
// workspace, is not a directory, or (unless force) is not empty, before
// anything is made.
type stepCheckOutput struct {
	cfg    *Config
	build  string // the build's name, for the suggestion
	target *target
}

// Name implements step.Step.
func (s *stepCheckOutput) Name() string { return "check output directory" }

// Run implements step.Step.
func (s *stepCheckOutput) Run(ctx context.Context) error {
	t := s.target
	if _, inside := within(t.dir, t.workspace); inside {
		return fmt.Errorf("output_directory %q would hold the workspace %s: choose a directory inside it, such as \"output/%s\"",
			s.cfg.OutputDirectory, t.workspace, s.build)
	}
	fi, err := os.Stat(t.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output directory %s: %w", t.shown, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("output directory %s exists and is not a directory: remove it or choose another output_directory", t.shown)
	}
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return fmt.Errorf("output directory %s: %w", t.shown, err)
	}
	if len(entries) > 0 && !s.cfg.Force {
		return fmt.Errorf("output directory %s already exists and is not empty: remove it, choose another output_directory, or set force = True to replace it", t.shown)
	}
	return nil
}
