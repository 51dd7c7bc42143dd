// Package null is the null() builder: it provisions a machine that already
// exists, reached over SSH. It launches nothing and captures no image; its
// artifact names the host it provisioned ("admin@203.0.113.10:22"), so that
// later builds and post-processors can refer to it.
//
// Its keywords are the SSH communicator's (drivers/ssh), declared there
// once; null() only insists on what it cannot learn by itself: the host's
// address, how to verify its host key and how to log in. Like every driver
// it knows nothing of Starlark: it gets a decoded Config in an engine.Job.
package null

import (
	"context"
	"fmt"

	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/step"
)

// Name is the builder's name in descriptions.
const Name = "null"

// Config is null()'s configuration: the SSH options, nothing else.
type Config struct {
	SSH ssh.Options `kw:",squash"`
}

// Validate implements schema.Validator. ssh_host, a way to verify the host
// key and a way to log in are required: there is no driver to learn them.
func (c *Config) Validate(deferred schema.Deferred) error {
	if c.SSH.Host == "" && !deferred.Has("ssh_host") {
		return schema.Errorf("ssh_host", "is required: null() provisions a machine that already exists, so it must be told where (ssh_host = \"203.0.113.10\")")
	}
	return c.SSH.Validate(deferred, ssh.Require{Host: true, HostKeyPolicy: true, Credentials: true})
}

// Def declares the null() builder.
func Def() *engine.BuilderDef {
	return &engine.BuilderDef{
		Schema: schema.Of(Name, "Provisions a machine that already exists, over SSH. Nothing is launched and no image is captured; the artifact names the host.", &Config{}),
		Outputs: []engine.Output{
			{Name: "host", Doc: "The host provisioned (ssh_host)."},
			{Name: "port", Doc: "Its SSH port."},
			{Name: "username", Doc: "The user the provisioners ran as (ssh_username)."},
		},
		Build:      Build,
		CheckTests: func(any) error { return nil },
	}
}

// Register adds null() to r.
func Register(r *engine.Registry) { r.AddBuilder(Def()) }

// Build connects to the host, runs the build's provisioners over that
// connection and returns an artifact naming the host. The connection is
// closed by the connect step's cleanup, whatever happens.
func Build(ctx context.Context, job *engine.Job) (*engine.Artifact, error) {
	cfg, ok := job.Config.(*Config)
	if !ok {
		return nil, fmt.Errorf("null: config is %T, not *null.Config", job.Config)
	}
	opts := cfg.SSH
	if job.Workspace != "" {
		opts.ResolvePaths(job.Workspace)
	}
	connect := &ssh.ConnectStep{Config: ssh.Config{Options: opts, UI: job.UI}}
	steps := []step.Step{connect, &engine.ProvisionStep{Job: job, Over: connect}}
	if job.HasTests() {
		// Nothing is launched: the tests check the machine provisioned.
		steps = append(steps, &engine.TestStep{Job: job, Over: connect})
	}
	if err := job.Steps.Run(ctx, steps...); err != nil {
		return nil, err
	}
	return &engine.Artifact{
		Build:  job.Name,
		Driver: job.Driver,
		ID:     opts.Username + "@" + opts.Addr(),
		Fields: map[string]any{
			"host":     opts.Host,
			"port":     opts.Port,
			"username": opts.Username,
		},
	}, nil
}
