package qemu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/imgbuild/imgbuild/drivers/qemu/vm"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/output"
)

// cdKeyPath is where the second CD holds the build's SSH public key.
const cdKeyPath = "imgbuild/authorized_keys"

// stepMakeCD makes the second CD from cd_files and cd_content with
// Debian's xorriso: ISO9660 with Rock Ridge and Joliet names, labelled
// cd_label, holding the build's SSH public key as imgbuild/authorized_keys.
// A directory in cd_files puts its content at the top, a file goes there
// under its own name. Its cleanup removes the image and its tree.
type stepMakeCD struct {
	ui      *event.UI
	cfg     *Config
	out     *output.Dir // its Workspace resolves relative paths
	workDir string
	keys    *stepMakeKey // the build's key

	// output
	path string // the image
	tree string
}

// Name implements step.Step.
func (s *stepMakeCD) Name() string { return "make CD" }

// Run implements step.Step.
func (s *stepMakeCD) Run(ctx context.Context) error {
	if _, err := exec.LookPath("xorriso"); err != nil {
		return errors.New("cd_files and cd_content need xorriso, which is not installed: apt-get install xorriso")
	}
	c := s.cfg
	s.tree = filepath.Join(s.workDir, "cd")
	if err := os.MkdirAll(s.tree, 0o755); err != nil {
		return err
	}
	for _, f := range c.CDFiles {
		src := abs(s.out.Workspace, f)
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("cd_files: %s does not exist", src)
		}
		if fi.IsDir() {
			err = os.CopyFS(s.tree, os.DirFS(src))
		} else {
			err = output.CopyFile(src, filepath.Join(s.tree, filepath.Base(src)))
		}
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("cd_files: %s has a file an earlier entry already put on the CD: %v", f, err)
		}
		if err != nil {
			return fmt.Errorf("cd_files: copying %s: %w", f, err)
		}
	}
	content := map[string]string{cdKeyPath: s.keys.key.AuthorizedKey() + "\n"}
	for p, v := range c.CDContent {
		content[strings.TrimLeft(p, "/")] = v
	}
	for p, v := range content {
		dst := filepath.Join(s.tree, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, []byte(v), 0o644); err != nil {
			return err
		}
	}
	label := c.CDLabel
	if label == "" {
		label = "imgbuild"
	}
	s.path = filepath.Join(s.workDir, "cd.iso")
	cmd := exec.CommandContext(ctx, "xorriso", "-as", "mkisofs", "-quiet", "-o", s.path, "-R", "-J", "-V", label, s.tree)
	if b, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("making the cd_files CD with xorriso: %v: %s", err, vm.LastLines(strings.TrimSpace(string(b)), 5))
	}
	s.ui.Say("second CD %q made with %d file(s)", label, countFiles(s.tree))
	return nil
}

func countFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// Cleanup implements step.Cleaner.
func (s *stepMakeCD) Cleanup(ctx context.Context, failed bool) error {
	if s.tree != "" {
		os.RemoveAll(s.tree)
	}
	if s.path != "" {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
