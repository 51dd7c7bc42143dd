// Package local is the local() builder and the local communicator.
//
// A local build provisions a fresh scratch directory on this machine and,
// once every provisioner has succeeded, moves it into its output directory
// in one rename: the artifact is that directory's files. It is the simplest
// builder, the one the engine is tested with, and a way to produce files
// (rendered configs, a root file system tree) with the same provisioners as
// the machine builds.
//
// The package knows nothing of Starlark: its config is a schema-tagged
// struct that the builtins layer decodes keyword arguments into.
package local

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/step"
)

// Config is the local() builder's configuration.
type Config struct {
	OutputDirectory string            `kw:"output_directory" default:"output/{build}" path:"output" doc:"Where the built files go, relative to the workspace ({build} is the build's name). A previous run's directory is replaced; one imgbuild did not make is refused."`
	Force           bool              `kw:"force" default:"False" doc:"Also replace an output directory imgbuild made for another build (what imgbuild did not make is never replaced)."`
	Files           map[string]string `kw:"files" doc:"Files to seed the directory with before provisioning: relative path → content."`
	Env             map[string]string `kw:"env" doc:"Environment variables for every command run in the directory."`
}

// Validate implements schema.Validator.
func (c *Config) Validate(deferred schema.Deferred) error {
	for _, name := range slices.Sorted(maps.Keys(c.Files)) {
		if _, err := seedPath(name); err != nil {
			return schema.Errorf("files", "%v", err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Env)) {
		if !shellquote.ValidName(name) {
			return schema.Errorf("env", "%q is not a valid environment variable name (letters, digits and _, not starting with a digit)", name)
		}
	}
	return nil
}

// seedPath checks a files key: a relative path that stays inside the
// directory.
func seedPath(name string) (string, error) {
	clean := path.Clean(filepath.ToSlash(name))
	switch {
	case name == "":
		return "", fmt.Errorf("a file name is empty")
	case path.IsAbs(clean):
		return "", fmt.Errorf("%q is absolute: name files relative to the build's directory, such as %q", name, strings.TrimLeft(clean, "/"))
	case clean == "." || clean == ".." || strings.HasPrefix(clean, "../"):
		return "", fmt.Errorf("%q is not a file inside the build's directory", name)
	}
	return clean, nil
}

// Def returns the local() builder's declaration.
func Def() *engine.BuilderDef {
	return &engine.BuilderDef{
		Schema: schema.Of("local",
			"Provisions a fresh scratch directory on this machine; when every provisioner has succeeded it becomes the output directory, and the artifact is its files. Commands run in the directory with IMGBUILD_ROOT set to it; file paths such as \"/etc/app.conf\" are inside it.",
			&Config{}),
		Outputs: []engine.Output{
			{Name: "directory", Doc: "The output directory (relative to the workspace when inside it)."},
		},
		Build:      Build,
		CheckTests: func(any) error { return nil },
	}
}

// Register adds the local() builder to r.
func Register(r *engine.Registry) { r.AddBuilder(Def()) }

// Build runs one local build: check the output directory, create and seed
// the scratch directory, provision it, move it into place. It makes the
// steps (one per file, step_*.go) and wires each to the earlier steps whose
// outputs it reads.
func Build(ctx context.Context, job *engine.Job) (*engine.Artifact, error) {
	cfg, ok := job.Config.(*Config)
	if !ok {
		return nil, fmt.Errorf("local: config is %T, want *local.Config", job.Config)
	}
	outs := job.OutputSet().Forced(cfg.Force)
	t := &target{outs: outs, rel: output.Expand(cfg.OutputDirectory, job.Name, job.Driver)}
	scratch := &stepCreateScratch{ui: job.UI, cfg: cfg, workDir: job.WorkDir}
	steps := []step.Step{
		&stepCheckOutput{target: t},
		scratch,
		&stepProvision{job: job, cfg: cfg, scratch: scratch},
	}
	if job.HasTests() {
		// The directory is tested before it becomes the output
		// directory: a failed test leaves no output.
		open := &stepOpenDirectory{cfg: cfg, scratch: scratch}
		steps = append(steps, &engine.TestStep{Job: job, Machine: []step.Step{open}, Over: open})
	}
	steps = append(steps, &stepMove{ui: job.UI, target: t, scratch: scratch})
	if err := job.Steps.Run(ctx, steps...); err != nil {
		return nil, err
	}
	files, err := t.listFiles()
	if err != nil {
		return nil, fmt.Errorf("listing the files of %s: %w", t.rel, err)
	}
	return &engine.Artifact{
		ID:       t.rel,
		Platform: "local",
		Files:    files,
		Fields:   map[string]any{"directory": t.rel},
	}, nil
}

// target is where a build's result goes: an output directory of the
// build's output set.
type target struct {
	outs *output.Set
	rel  string // the output directory, relative to the workspace
}

// listFiles returns the output directory's files (regular files and
// symbolic links), sorted, as paths relative to the workspace when the
// directory is inside it.
func (t *target) listFiles() ([]string, error) {
	var files []string
	err := filepath.WalkDir(t.outs.Abs(t.rel), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		files = append(files, t.outs.Show(p))
		return nil
	})
	sort.Strings(files)
	return files, err
}
