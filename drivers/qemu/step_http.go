package qemu

import (
	"context"
	"maps"

	"github.com/imgbuild/imgbuild/drivers/httpserve"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/output"
)

// stepHTTP serves http_directory and http_content, with the build's SSH
// public key at /.imgbuild/authorized_keys, on 127.0.0.1 and a port from
// http_port_min to http_port_max: the guest reaches it as 10.0.2.2
// through QEMU's user network. Its cleanup stops the server.
type stepHTTP struct {
	ui   *event.UI
	cfg  *Config
	out  *output.Dir // its Workspace resolves http_directory
	keys *stepMakeKey

	// output
	httpserve.Running
}

// Name implements step.Step.
func (s *stepHTTP) Name() string { return "start HTTP server" }

// Run implements step.Step.
func (s *stepHTTP) Run(ctx context.Context) error {
	c := s.cfg
	content := maps.Clone(c.HTTPContent)
	if content == nil {
		content = map[string]string{}
	}
	content[httpserve.AuthorizedKeysPath] = s.keys.key.AuthorizedKey() + "\n"
	h, err := httpserve.Start(ctx, httpserve.Options{
		IP: "127.0.0.1", PortMin: c.HTTPPortMin, PortMax: c.HTTPPortMax,
		Directory: abs(s.out.Workspace, c.HTTPDirectory), Content: content, Log: s.ui.Say,
	})
	if err != nil {
		return err
	}
	s.Server = h
	s.ui.Say("serving the installer's files on %s, which the machine reaches as http://%s:%d", h.URL(), httpIP, h.Port)
	return nil
}
