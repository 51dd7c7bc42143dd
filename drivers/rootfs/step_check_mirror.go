package rootfs

import (
	"context"
	"strings"

	"github.com/imgbuild/imgbuild/engine/event"
)

// stepCheckMirror picks the mirror (mirror, else the one this machine's apt
// uses) and checks that it has the suite, before anything is downloaded.
type stepCheckMirror struct {
	ui  *event.UI
	cfg *Config

	// outputs
	mirror   string // without a trailing slash
	codename string // the suite's codename ("bookworm" for stable)
	release  []byte // the suite's Release file
}

// Name implements step.Step.
func (s *stepCheckMirror) Name() string { return "check mirror" }

// Run implements step.Step.
func (s *stepCheckMirror) Run(ctx context.Context) error {
	s.mirror = s.cfg.Mirror
	source := ""
	if s.mirror == "" {
		s.mirror = HostMirror()
		source = " (the mirror this machine's apt uses)"
	}
	s.mirror = strings.TrimRight(s.mirror, "/")
	codename, release, err := checkSuite(ctx, s.mirror, s.cfg.Suite)
	if err != nil {
		return err
	}
	s.codename, s.release = codename, release
	if codename != s.cfg.Suite {
		s.ui.Say("installing Debian %s (%s) from %s%s", s.cfg.Suite, codename, s.mirror, source)
	} else {
		s.ui.Say("installing Debian %s from %s%s", codename, s.mirror, source)
	}
	return nil
}
