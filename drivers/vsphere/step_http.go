package vsphere

import (
	"context"
	"fmt"
	"maps"
	"net"
	"path/filepath"

	"github.com/imgbuild/imgbuild/drivers/httpserve"
)

// stepHTTP starts the local HTTP server for http_directory and
// http_content, with the build's authorized key at
// /.imgbuild/authorized_keys; the cleanup stops it.
type stepHTTP struct {
	env *buildEnv
	vc  *stepConnect // vCenter's address: the server listens toward it

	// outputs
	httpserve.Running
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
	content := maps.Clone(b.iso.HTTPContent)
	if content == nil {
		content = map[string]string{}
	}
	content[httpserve.AuthorizedKeysPath] = b.key.AuthorizedKey() + "\n"
	h, err := httpserve.Start(ctx, httpserve.Options{
		IP: ip, PortMin: b.iso.HTTPPort, PortMax: b.iso.HTTPPort,
		Directory: dir, Content: content, Log: b.say,
	})
	if err != nil {
		return fmt.Errorf("%w (set http_ip or http_port)", err)
	}
	s.Server = h
	b.say("serving the installer's files at %s", h.URL())
	return nil
}

// localIPToward returns this machine's address on the way to host: the
// address a VM on host's networks most likely reaches us at.
func localIPToward(host string) (string, error) {
	c, err := net.Dial("udp", net.JoinHostPort(host, "443"))
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}
