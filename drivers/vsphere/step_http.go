package vsphere

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/imgbuild/imgbuild/engine/step"
)

// httpStep starts the local HTTP server for http_directory and
// http_content; the cleanup stops it.
func (b *build) httpStep() step.Step {
	return &step.Func{
		StepName: "start HTTP server",
		RunFunc: func(ctx context.Context) error {
			ip := b.iso.HTTPIP
			if ip == "" {
				var err error
				if ip, err = localIPToward(b.ep.URL.Hostname()); err != nil {
					return fmt.Errorf("finding this machine's address toward %s for the HTTP server: %v; set http_ip", b.ep.URL.Hostname(), err)
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
			b.http = h
			b.say("serving the installer's files at %s", h.url())
			return nil
		},
		CleanFunc: func(ctx context.Context, failed bool) error {
			if b.http == nil {
				return nil
			}
			err := b.http.stop(ctx)
			b.http = nil
			return err
		},
		LeftFunc: func() []string {
			if b.http == nil {
				return nil
			}
			return []string{"the HTTP server at " + b.http.url()}
		},
	}
}
