package provision

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/workspace"
)

// FileConfig is file()'s configuration.
//
// Uploading follows Packer's rules. A file source goes to destination, or
// into it, keeping its name, when destination ends in "/". A directory
// source without a trailing "/" is copied into destination as a
// subdirectory of the same name ("files/etc" to "/opt/" makes /opt/etc); with a
// trailing "/" its contents are copied into destination ("files/etc/" to
// "/etc" fills /etc). sources uploads each into destination, which must end
// in "/". content writes that text to the file destination.
//
// Downloading (direction = "download") reads source on the machine: a file
// is written to the local destination (into it, keeping its name, when
// destination ends in "/" or is a directory); a source ending in "/" is a
// directory whose contents are copied into the local destination.
type FileConfig struct {
	Source      string   `kw:"source" path:"any" pathunless:"direction=download" doc:"The file or directory to copy (on the machine when downloading); a directory ending in \"/\" copies its contents."`
	Sources     []string `kw:"sources" path:"any" pathunless:"direction=download" doc:"Several files or directories to copy into destination, which must end in \"/\"."`
	Content     *string  `kw:"content" doc:"Text to write to destination on the machine, instead of a source."`
	Destination string   `kw:"destination,required" path:"output" pathif:"direction=download" doc:"Where to copy to: a path on the machine when uploading; when downloading, a path in the workspace, which the build then owns (a file of its earlier run is replaced, one imgbuild did not make never is)."`
	Direction   string   `kw:"direction" default:"upload" enum:"upload|download" doc:"\"upload\" to the machine or \"download\" from it."`
	Mode        int      `kw:"mode" doc:"Permissions of an uploaded file or content, such as 0o644; default: the source file's own (0644 for content)."`
	BuildFilter `kw:",squash"`
}

// Validate implements schema.Validator.
func (c *FileConfig) Validate(deferred schema.Deferred) error {
	if err := exactlyOne("file", []string{"source", "sources", "content"},
		[]bool{c.Source != "" || deferred.Has("source"), len(c.Sources) > 0 || deferred.Has("sources"), c.Content != nil || deferred.Has("content")}); err != nil {
		return err
	}
	download := c.Direction == "download"
	if download && c.Content != nil {
		return schema.Errorf("content", "only works with direction = \"upload\": a download copies source from the machine")
	}
	if download && c.Mode != 0 {
		return schema.Errorf("mode", "only applies to uploads; downloaded files keep the machine's mode")
	}
	if c.Mode < 0 || c.Mode > 0o7777 {
		return schema.Errorf("mode", "%#o is not a file mode (0 to 0o7777)", c.Mode)
	}
	if (len(c.Sources) > 0 || deferred.Has("sources")) && !strings.HasSuffix(c.Destination, "/") && !deferred.Has("destination") {
		return schema.Errorf("destination", "must be a directory ending in \"/\" when sources is used, so that every source keeps its name (got %q)", c.Destination)
	}
	if c.Destination == "" && !deferred.Has("destination") {
		return schema.Errorf("destination", "is empty: say where to copy to")
	}
	return c.BuildFilter.Validate()
}

// FileDef returns file()'s declaration.
func FileDef() *engine.ProvisionerDef {
	return Def("file",
		"Copies files or directories to the build's machine (or from it, with direction = \"download\"), or writes content to a file there.",
		func(cfg *FileConfig) engine.Provisioner { return &File{cfg: cfg} })
}

// File is the file() provisioner. Local paths are relative to the current
// directory of the process, which the command line tool sets to the
// workspace.
type File struct {
	cfg *FileConfig
}

// Provision implements engine.Provisioner.
func (f *File) Provision(ctx context.Context, env *engine.ProvisionEnv) error {
	c := f.cfg
	if c.Direction == "download" {
		return f.each(ctx, env, f.download)
	}
	if c.Content != nil {
		dst := c.Destination
		label := "write content to " + dst
		t := engine.Transfer{Size: int64(len(*c.Content)), Mode: fs.FileMode(c.Mode), Progress: progress(env.UI, label)}
		env.UI.Say("%s", label)
		if err := env.Comm.Upload(ctx, dst, strings.NewReader(*c.Content), t); err != nil {
			return err // it names dst
		}
		return nil
	}
	return f.each(ctx, env, f.upload)
}

// each runs transfer for source, or for each of sources, in order, until
// one fails.
func (f *File) each(ctx context.Context, env *engine.ProvisionEnv, transfer func(context.Context, *engine.ProvisionEnv, string) error) error {
	sources := f.cfg.Sources
	if f.cfg.Source != "" {
		sources = []string{f.cfg.Source}
	}
	for _, src := range sources {
		if err := transfer(ctx, env, src); err != nil {
			return err
		}
	}
	return nil
}

// onThisMachine takes a relative path on this machine from the workspace: sources
// from the description are already absolute, but other builds' outputs
// (base.files) are relative to the workspace.
func onThisMachine(env *engine.ProvisionEnv, p string) string {
	if filepath.IsAbs(p) || env.Workspace == "" {
		return p
	}
	trailing := strings.HasSuffix(p, "/")
	p = filepath.Join(env.Workspace, p)
	if trailing {
		p += "/"
	}
	return p
}

func (f *File) upload(ctx context.Context, env *engine.ProvisionEnv, src string) error {
	src = onThisMachine(env, src)
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("uploading %s: %w", src, err)
	}
	dst := f.cfg.Destination
	if fi.IsDir() {
		if !strings.HasSuffix(src, "/") {
			dst = path.Join(dst, filepath.Base(src))
		}
		label := "upload " + src + " → " + dst
		env.UI.Say("%s", label)
		if err := env.Comm.UploadDir(ctx, dst, src, engine.Transfer{Progress: progress(env.UI, label)}); err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		return nil
	}
	if strings.HasSuffix(dst, "/") {
		dst = path.Join(dst, filepath.Base(src))
	}
	mode := fi.Mode().Perm()
	if f.cfg.Mode != 0 {
		mode = fs.FileMode(f.cfg.Mode)
	}
	r, err := workspace.OpenInput(env.Workspace, src)
	if err != nil {
		return fmt.Errorf("uploading %s: %w", src, err)
	}
	defer r.Close()
	label := "upload " + src + " → " + dst
	env.UI.Say("%s", label)
	t := engine.Transfer{Size: fi.Size(), Mode: mode, Progress: progress(env.UI, label)}
	if err := env.Comm.Upload(ctx, dst, r, t); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	return nil
}

func (f *File) download(ctx context.Context, env *engine.ProvisionEnv, src string) error {
	outs := env.OutputSet()
	rel := strings.TrimPrefix(f.cfg.Destination, "//")
	label := "download " + src + " → " + rel
	env.UI.Say("%s", label)
	t := engine.Transfer{Progress: progress(env.UI, label)}
	if strings.HasSuffix(src, "/") {
		// A directory: filled beside its place, then moved there whole.
		_, err := outs.WriteDir(rel, "destination", func(dir string) error {
			return env.Comm.DownloadDir(ctx, src, dir, t) // its error names src
		})
		return err
	}
	if fi, err := os.Stat(outs.Abs(rel)); strings.HasSuffix(rel, "/") || (err == nil && fi.IsDir()) {
		rel = path.Join(rel, path.Base(src))
	}
	out, err := outs.Create(rel, "destination")
	if err != nil {
		return err
	}
	if err := env.Comm.Download(ctx, src, out.File, t); err != nil {
		out.Discard()
		return err // it names src
	}
	if _, err := out.Place(); err != nil {
		out.Discard()
		return fmt.Errorf("downloading %s: %w", src, err)
	}
	return nil
}
