package qemu

import (
	"context"

	"github.com/imgbuild/imgbuild/drivers/iso"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/output"
)

// stepFetchISO gets the installer ISO (drivers/iso: a workspace file, or
// a download kept in the cache every run shares) and checks it against
// iso_checksum before anything boots it.
type stepFetchISO struct {
	ui  *event.UI
	cfg *Config
	out *output.Dir // its Workspace resolves relative paths

	// output
	path string // the ISO, checked
}

// Name implements step.Step.
func (s *stepFetchISO) Name() string { return "fetch ISO" }

// Run implements step.Step.
func (s *stepFetchISO) Run(ctx context.Context) error {
	urls := s.cfg.ISOURLs
	if s.cfg.ISOURL != "" {
		urls = []string{s.cfg.ISOURL}
	}
	got, err := iso.Fetch(ctx, iso.Request{
		URLs: urls, Checksum: s.cfg.ISOChecksum, Workspace: s.out.Workspace,
		Progress: func(what string, done, total int64) { s.ui.Progress(what, done, total, "bytes") },
		Say:      s.ui.Say, Warn: s.ui.Warn,
	})
	if err != nil {
		return err
	}
	s.path = got.Path
	return nil
}
