package qemu

import (
	"context"

	"github.com/imgbuild/imgbuild/drivers/ssh"
)

// stepMakeKey makes the SSH key the machine lets the build in with: given
// to it as an SMBIOS credential, and for installs served over HTTP and put
// on the second CD.
type stepMakeKey struct {
	name string // the build's

	// output
	key *ssh.Key
}

// Name implements step.Step.
func (s *stepMakeKey) Name() string { return "make SSH key" }

// Run implements step.Step.
func (s *stepMakeKey) Run(ctx context.Context) error {
	key, err := ssh.NewKey("imgbuild-" + s.name)
	s.key = key
	return err
}
