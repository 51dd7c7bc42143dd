package local

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"

	"github.com/imgbuild/imgbuild/engine/event"
)

// stepCreateScratch creates the scratch directory the provisioners work in,
// in the build's scratch space, and seeds it with files. Its cleanup
// removes it (after a successful move there is nothing left to remove).
type stepCreateScratch struct {
	ui      *event.UI
	cfg     *Config
	workDir string

	// outputs
	dir string
}

// Name implements step.Step.
func (s *stepCreateScratch) Name() string { return "create scratch directory" }

// Run implements step.Step.
func (s *stepCreateScratch) Run(ctx context.Context) error {
	dir, err := os.MkdirTemp(s.workDir, "local-root-")
	if err != nil {
		return fmt.Errorf("creating the scratch directory: %w", err)
	}
	s.dir = dir
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if len(s.cfg.Files) == 0 {
		return nil
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, name := range slices.Sorted(maps.Keys(s.cfg.Files)) {
		rel, err := seedPath(name)
		if err != nil {
			return err
		}
		if err := root.MkdirAll(path.Dir(rel), 0o755); err != nil {
			return fmt.Errorf("seeding %s: %w", name, err)
		}
		if err := root.WriteFile(rel, []byte(s.cfg.Files[name]), 0o644); err != nil {
			return fmt.Errorf("seeding %s: %w", name, err)
		}
	}
	s.ui.Say("seeded %d file(s) into %s", len(s.cfg.Files), dir)
	return nil
}

// Cleanup implements step.Cleaner.
func (s *stepCreateScratch) Cleanup(ctx context.Context, failed bool) error {
	if s.dir == "" {
		return nil
	}
	return os.RemoveAll(s.dir)
}

// Leftovers implements step.Leaver.
func (s *stepCreateScratch) Leftovers() []string { return []string{"scratch directory " + s.dir} }
