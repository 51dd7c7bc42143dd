package qemu

import (
	"context"
	"os"
	"time"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/output"
)

// stepConvert flattens the overlay the machine wrote into the output disk
// (format, compress), under a temporary name in the output directory until
// stepPlace moves it in, once tested. The disk is the artifact: its
// cleanup removes the output directory's files if the build fails.
type stepConvert struct {
	ui      *event.UI
	cfg     *Config
	out     *output.Dir
	name    string             // the output disk's file name
	overlay *stepCreateOverlay // what the machine wrote

	// outputs
	disk string // absolute, the temporary name
}

// Name implements step.Step.
func (s *stepConvert) Name() string { return "convert" }

// MakesArtifact implements step.Artifact.
func (s *stepConvert) MakesArtifact() bool { return true }

// Run implements step.Step.
func (s *stepConvert) Run(ctx context.Context) error {
	tmp, err := s.out.Begin(s.name)
	if err != nil {
		return err
	}
	start := time.Now()
	err = qemuimg.Convert(ctx, qemuimg.ConvertOptions{
		In: s.overlay.path, InFormat: "qcow2", Out: tmp, Format: s.cfg.Format, Compress: s.cfg.Compress,
		Progress: func(done, total int64) { s.ui.Progress("convert", done, total, "%") },
	})
	if err != nil {
		return err
	}
	s.disk = tmp
	fi, _ := os.Stat(tmp)
	compressed := ""
	if s.cfg.Compress {
		compressed = ", compressed"
	}
	s.ui.Say("%s made in %s (%s%s)", s.out.Show(s.out.File(s.name)), time.Since(start).Round(100*time.Millisecond), qemuimg.HumanSize(fi.Size()), compressed)
	return nil
}

// Cleanup removes the output directory's files if the build failed.
func (s *stepConvert) Cleanup(ctx context.Context, failed bool) error { return s.out.Cleanup(failed) }

// Leftovers implements step.Leaver.
func (s *stepConvert) Leftovers() []string { return s.out.Leftovers() }
