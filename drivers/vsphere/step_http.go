package vsphere

import (
	"context"
	"fmt"
	"path/filepath"
)

// stepHTTP starts the local HTTP server for http_directory and
// http_content; the cleanup stops it.
type stepHTTP struct {
	env *buildEnv
	vc  *stepConnect // vCenter's address: the server listens toward it

	// outputs
	server *httpServer
}

// Name implements step.Step.
func (s *stepHTTP) Name() string { return "start HTTP server" }

// Run implements step.Step.
func (s *stepHTTP) Run(ctx context.Context) error {
	b := s.env
	ip := b.iso.HTTPIP
	if ip == "" {
		var err error
		host := s.vc.ep.URL.Hostname()
		if ip, err = localIPToward(host); err != nil {
			return fmt.Errorf("finding this machine's address toward %s for the HTTP server: %v; set http_ip", host, err)
		}
	}
	dir := b.iso.HTTPDirectory
	if dir != "" && !filepath.IsAbs(dir) {
		dir = filepath.Join(b.workspace, dir)
	}
	h, err := startHTTP(b.job.UI, ip, b.iso.HTTPPort, dir, b.iso.HTTPContent, b.key.AuthorizedKey())
	if err != nil {
		return err
	}
	s.server = h
	b.say("serving the installer's files at %s", h.url())
	return nil
}

// Cleanup stops the server.
func (s *stepHTTP) Cleanup(ctx context.Context, failed bool) error {
	if s.server == nil {
		return nil
	}
	err := s.server.stop(ctx)
	s.server = nil
	return err
}

// Leftovers implements step.Leaver.
func (s *stepHTTP) Leftovers() []string {
	if s.server == nil {
		return nil
	}
	return []string{"the HTTP server at " + s.server.url()}
}
