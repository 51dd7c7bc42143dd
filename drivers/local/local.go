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
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/step"
)

// Config is the local() builder's configuration.
type Config struct {
	OutputDirectory string            `kw:"output_directory" doc:"Where the built files go, relative to the workspace; \"\" means output/<build name>."`
	Force           bool              `kw:"force" default:"False" doc:"Replace an existing, non-empty output directory instead of failing."`
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
		Build: Build,
	}
}

// Register adds the local() builder to r.
func Register(r *engine.Registry) { r.AddBuilder(Def()) }

// renameScratch moves the provisioned directory into place; tests replace
// it to act out a scratch directory on another file system.
var renameScratch = os.Rename

// build is one local build's state, shared by its steps.
type build struct {
	job       *engine.Job
	cfg       *Config
	workspace string // absolute
	out       string // absolute output directory
	shown     string // out as the user reads it
	scratch   string // the directory being provisioned
	created   bool   // this build made out (so may remove it)
	aside     string // a replaced output directory, until the move succeeded
	staging   string // a copy beside out, when scratch is on another file system
}

// Build runs one local build: check the output directory, create and seed
// the scratch directory, provision it, move it into place.
func Build(ctx context.Context, job *engine.Job) (*engine.Artifact, error) {
	cfg, ok := job.Config.(*Config)
	if !ok {
		return nil, fmt.Errorf("local: config is %T, want *local.Config", job.Config)
	}
	ws := job.Workspace
	if ws == "" {
		ws = "."
	}
	ws, err := filepath.Abs(ws)
	if err != nil {
		return nil, err
	}
	b := &build{job: job, cfg: cfg, workspace: ws}
	out := cfg.OutputDirectory
	if out == "" {
		out = filepath.Join("output", job.Name)
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(ws, out)
	}
	b.out = filepath.Clean(out)
	b.shown = b.display(b.out)

	err = job.Steps.Run(ctx,
		&step.Func{StepName: "check output directory", RunFunc: b.checkOutput},
		&step.Func{StepName: "create scratch directory", RunFunc: b.createScratch, CleanFunc: b.removeScratch,
			LeftFunc: func() []string { return []string{"scratch directory " + b.scratch} }},
		&step.Func{StepName: "provision", RunFunc: b.provision},
		&step.Func{StepName: "move to output directory", RunFunc: b.move, CleanFunc: b.removeOutput, Artifact: true,
			LeftFunc: b.outputLeft},
	)
	if err != nil {
		return nil, err
	}
	files, err := b.listFiles()
	if err != nil {
		return nil, fmt.Errorf("listing the files of %s: %w", b.shown, err)
	}
	return &engine.Artifact{
		ID:       b.shown,
		Platform: "local",
		Files:    files,
		Fields:   map[string]any{"directory": b.shown},
	}, nil
}

// display returns p relative to the workspace when inside it, else p.
func (b *build) display(p string) string {
	if rel, ok := within(b.workspace, p); ok {
		return rel
	}
	return p
}

// within returns p relative to dir, and whether p is inside dir.
func within(dir, p string) (string, bool) {
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	return rel, true
}

func (b *build) checkOutput(ctx context.Context) error {
	if _, inside := within(b.out, b.workspace); inside {
		return fmt.Errorf("output_directory %q would hold the workspace %s: choose a directory inside it, such as \"output/%s\"",
			b.cfg.OutputDirectory, b.workspace, b.job.Name)
	}
	fi, err := os.Stat(b.out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output directory %s: %w", b.shown, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("output directory %s exists and is not a directory: remove it or choose another output_directory", b.shown)
	}
	entries, err := os.ReadDir(b.out)
	if err != nil {
		return fmt.Errorf("output directory %s: %w", b.shown, err)
	}
	if len(entries) > 0 && !b.cfg.Force {
		return fmt.Errorf("output directory %s already exists and is not empty: remove it, choose another output_directory, or set force = True to replace it", b.shown)
	}
	return nil
}

func (b *build) createScratch(ctx context.Context) error {
	dir, err := os.MkdirTemp(b.job.WorkDir, "local-root-")
	if err != nil {
		return fmt.Errorf("creating the scratch directory: %w", err)
	}
	b.scratch = dir
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if len(b.cfg.Files) == 0 {
		return nil
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, name := range slices.Sorted(maps.Keys(b.cfg.Files)) {
		rel, err := seedPath(name)
		if err != nil {
			return err
		}
		if err := root.MkdirAll(path.Dir(rel), 0o755); err != nil {
			return fmt.Errorf("seeding %s: %w", name, err)
		}
		if err := root.WriteFile(rel, []byte(b.cfg.Files[name]), 0o644); err != nil {
			return fmt.Errorf("seeding %s: %w", name, err)
		}
	}
	b.job.UI.Say("seeded %d file(s) into %s", len(b.cfg.Files), dir)
	return nil
}

func (b *build) removeScratch(ctx context.Context, failed bool) error {
	if b.scratch == "" {
		return nil
	}
	// After a successful move there is nothing left here.
	return os.RemoveAll(b.scratch)
}

func (b *build) provision(ctx context.Context) error {
	comm, err := NewCommunicator(b.scratch, b.cfg.Env)
	if err != nil {
		return err
	}
	defer comm.Close()
	return b.job.Provision(ctx, comm)
}

// move puts the scratch directory in place of the output directory with a
// rename, so that the output directory is never half-written: a replaced
// one is moved aside first and put back if the move fails.
func (b *build) move(ctx context.Context) error {
	parent := filepath.Dir(b.out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", b.display(parent), err)
	}
	if _, err := os.Lstat(b.out); err == nil {
		aside, err := os.MkdirTemp(parent, "."+filepath.Base(b.out)+".old-")
		if err != nil {
			return fmt.Errorf("moving the old %s aside: %w", b.shown, err)
		}
		if err := os.Rename(b.out, filepath.Join(aside, "old")); err != nil {
			os.Remove(aside)
			return fmt.Errorf("moving the old %s aside: %w", b.shown, err)
		}
		b.aside = aside
	}
	err := renameScratch(b.scratch, b.out)
	if errors.Is(err, syscall.EXDEV) {
		// The scratch directory is on another file system: copy it beside
		// the output directory, then rename that.
		err = b.copyBeside(ctx)
	}
	if err != nil {
		b.restoreAside()
		return fmt.Errorf("moving the result into %s: %w", b.shown, err)
	}
	b.created = true
	if b.aside != "" {
		if err := os.RemoveAll(b.aside); err != nil {
			b.job.UI.Warn("could not remove the replaced output directory %s: %v", b.display(b.aside), err)
		}
		b.aside = ""
	}
	b.job.UI.Say("output directory %s", b.shown)
	return nil
}

func (b *build) copyBeside(ctx context.Context) error {
	staging, err := os.MkdirTemp(filepath.Dir(b.out), "."+filepath.Base(b.out)+".new-")
	if err != nil {
		return err
	}
	b.staging = staging
	from, err := os.OpenRoot(b.scratch)
	if err != nil {
		return err
	}
	defer from.Close()
	to, err := os.OpenRoot(staging)
	if err != nil {
		return err
	}
	defer to.Close()
	if err := copyTree(ctx, from.FS(), to, nil); err != nil {
		return err
	}
	if err := os.Rename(staging, b.out); err != nil {
		return err
	}
	b.staging = ""
	return os.RemoveAll(b.scratch)
}

func (b *build) restoreAside() {
	if b.staging != "" {
		os.RemoveAll(b.staging)
		b.staging = ""
	}
	if b.aside == "" {
		return
	}
	if err := os.Rename(filepath.Join(b.aside, "old"), b.out); err == nil {
		os.Remove(b.aside)
		b.aside = ""
	}
}

// removeOutput removes the output directory on failure, and only if this
// build made it.
func (b *build) removeOutput(ctx context.Context, failed bool) error {
	if !failed {
		return nil
	}
	b.restoreAside()
	if b.aside != "" {
		return fmt.Errorf("the replaced output directory could not be put back; it is in %s", b.display(b.aside))
	}
	if !b.created {
		return nil
	}
	if err := os.RemoveAll(b.out); err != nil {
		return err
	}
	b.created = false
	return nil
}

func (b *build) outputLeft() []string {
	var left []string
	if b.created {
		left = append(left, "output directory "+b.shown)
	}
	if b.staging != "" {
		left = append(left, "staging directory "+b.display(b.staging))
	}
	if b.aside != "" {
		left = append(left, "replaced output directory "+b.display(b.aside))
	}
	return left
}

// listFiles returns the output directory's files (regular files and
// symbolic links), sorted, as paths relative to the workspace when the
// directory is inside it.
func (b *build) listFiles() ([]string, error) {
	var files []string
	err := filepath.WalkDir(b.out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		files = append(files, filepath.ToSlash(b.display(p)))
		return nil
	})
	sort.Strings(files)
	return files, err
}
