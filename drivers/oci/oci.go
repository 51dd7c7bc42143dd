// Package oci is the oci_image() post-processor: it makes a container
// image of a rootfs() build's root file system tree (the reproducible tar
// of it the build made), with github.com/google/go-containerregistry, as
// an OCI image layout (a directory skopeo, umoci and podman read) or a
// docker-archive tar (docker load, podman load). The tree is one layer,
// gzip-compressed on every core; the keywords are the image
// configuration's: entrypoint, cmd, env, labels, user, workdir, exposed
// ports.
//
// It knows nothing of Starlark.
package oci

import (
	"archive/tar"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imgbuild/imgbuild/drivers/diskpost"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// Name is the post-processor's name in descriptions.
const Name = "oci_image"

// Def declares oci_image().
func Def() *engine.PostProcessorDef {
	return &engine.PostProcessorDef{
		Schema: schema.Of(Name,
			"Makes a container image of a rootfs() build's root file system tree (its \"tar\" format), as an OCI image layout or a docker-archive tar, with the entrypoint, cmd, env, labels, user, workdir and exposed ports given; one layer, compressed on every core. The image's files join the artifact.",
			&Config{}),
		Outputs: []engine.Output{
			{Name: "oci_image", Doc: "The image layout directory, or the docker-archive tar, relative to the workspace."},
			{Name: "oci_image_ref", Doc: "The image as skopeo and podman name it: \"oci:<dir>:<first tag>\" or \"docker-archive:<tar>\"."},
			{Name: "oci_image_digest", Doc: "\"sha256:<hex>\" of the OCI layout's manifest (the digest a registry gives the image pushed as is); \"\" for a docker-archive, which keeps no manifest."},
			{Name: "oci_image_id", Doc: "\"sha256:<hex>\" of the image's configuration: the image ID podman and docker show once it is loaded, the same in both formats."},
		},
		New: engine.Typed("oci_image", func(cfg *Config) engine.PostProcessor { return &Image{cfg: cfg} }),
	}
}

// Register adds oci_image() to r.
func Register(r *engine.Registry) { r.AddPostProcessor(Def()) }

// Image is the oci_image() post-processor.
type Image struct {
	cfg *Config
}

// PostProcess implements engine.PostProcessor.
func (p *Image) PostProcess(ctx context.Context, env *engine.PostEnv, in *engine.Artifact) (*engine.Artifact, error) {
	cfg := p.cfg
	outs := env.OutputSet().Forced(cfg.Force)
	tree, err := treeOf(in, outs)
	if err != nil {
		return nil, err
	}
	refs, err := cfg.references(env.Build)
	if err != nil {
		return nil, err
	}
	created, err := creationTime()
	if err != nil {
		return nil, err
	}
	rel := strings.ReplaceAll(output.Expand(cfg.Output, env.Build, env.Driver), "{format}", cfg.Format)
	start := time.Now()
	progress := func(done, total int64) { env.UI.Progress("compress layer", done, total, "bytes") }
	var (
		shown, ref, digest string
		files              []string
		l                  *layer
		img                v1.Image
	)
	if cfg.Format == "oci" {
		dir, err := outs.WriteDir(rel, "output", func(dir string) (err error) {
			l, img, err = writeLayout(ctx, dir, tree, cfg, refs, created, progress)
			return err
		})
		if err != nil {
			return nil, err
		}
		if files, err = filesUnder(dir, outs); err != nil {
			return nil, err
		}
		shown = outs.Show(dir)
		ref = "oci:" + shown + ":" + refs[0].TagStr()
		d, err := img.Digest()
		if err != nil {
			return nil, err
		}
		digest = d.String()
	} else {
		scratch, err := os.MkdirTemp(env.WorkDir, "oci-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(scratch)
		if l, img, err = buildImage(ctx, filepath.Join(scratch, "layer.tar.gz"), tree, cfg, created, types.DockerLayer, progress); err != nil {
			return nil, err
		}
		if shown, _, err = diskpost.WriteOutput(outs, rel, "output", func(f *output.File) error {
			return writeArchive(f.File, img, refs, env.UI.Progress)
		}); err != nil {
			return nil, err
		}
		files, ref = []string{shown}, "docker-archive:"+shown
	}
	id, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, r := range refs {
		tags = append(tags, r.TagStr())
	}
	env.UI.Say("oci_image: %s made in %s (%s, %s:%s, %s layer %s, tar %s)", shown, time.Since(start).Round(100*time.Millisecond),
		cfg.Format, refs[0].RepositoryStr(), strings.Join(tags, ","), l.mediaType, qemuimg.HumanSize(l.size), l.diffID)
	return diskpost.Pass(in, cfg.KeepInputArtifact, "oci", shown, files, map[string]any{
		"oci_image": shown, "oci_image_ref": ref, "oci_image_digest": digest, "oci_image_id": id.String(),
	}), nil
}

// treeOf is the absolute path of the tar of the artifact's root file
// system tree, checked to be a tar; an artifact without one is an error
// that says which build made what.
func treeOf(in *engine.Artifact, outs *output.Set) (string, error) {
	rel, _ := in.Fields["tar"].(string)
	if rel == "" {
		if disk, _ := in.Fields["disk"].(string); disk != "" && in.Driver == "rootfs" {
			return "", fmt.Errorf("build %q (rootfs) made the disk %s and no tar of its root file system tree: oci_image() packs the tree; add \"tar\" to its formats", in.Build, disk)
		}
		return "", fmt.Errorf("build %q (%s) made %s, which has no root file system tree: oci_image() packs the tree of a rootfs() build whose formats include \"tar\"", in.Build, in.Driver, diskpost.Describe(in))
	}
	abs := rel
	if !filepath.IsAbs(abs) {
		abs = outs.Abs(rel)
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", fmt.Errorf("the tree of build %q: %w", in.Build, err)
	}
	defer f.Close()
	if _, err := tar.NewReader(f).Next(); err != nil {
		return "", fmt.Errorf("the tree of build %q, %s, is not a tar archive (%v): oci_image() packs the tar a rootfs() build makes", in.Build, rel, err)
	}
	return abs, nil
}

// references are the image's names: the repository (the build's name
// when unset) with each tag.
func (c *Config) references(build string) ([]name.Tag, error) {
	repo := c.Repository
	if repo == "" {
		repo = strings.ToLower(build)
	}
	var refs []name.Tag
	for _, t := range c.Tags {
		ref, err := name.NewTag(repo + ":" + t)
		if err != nil {
			if c.Repository == "" {
				return nil, fmt.Errorf("the build's name %q is no image repository (%v): set repository", build, err)
			}
			return nil, fmt.Errorf("repository %q, tag %q: %w", repo, t, err)
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// creationTime is the image's creation time: $SOURCE_DATE_EPOCH when it
// is set (the same tree then makes the same image), else now.
func creationTime() (time.Time, error) {
	sde := os.Getenv("SOURCE_DATE_EPOCH")
	if sde == "" {
		return time.Now().UTC().Truncate(time.Second), nil
	}
	n, err := strconv.ParseInt(sde, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", sde)
	}
	return time.Unix(n, 0).UTC(), nil
}

// configFile is the image's configuration, before its layer is added.
func (c *Config) configFile(created time.Time) *v1.ConfigFile {
	arch := c.Architecture
	if arch == "" {
		arch = runtime.GOARCH
	}
	cf := &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      v1.Time{Time: created},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: c.Entrypoint,
			Cmd:        c.Cmd,
			User:       c.User,
			WorkingDir: c.Workdir,
		},
	}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		cf.Config.Env = append(cf.Config.Env, k+"="+c.Env[k])
	}
	if len(c.Labels) > 0 {
		cf.Config.Labels = maps.Clone(c.Labels)
	}
	if len(c.ExposedPorts) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range c.ExposedPorts {
			port, _ := Port(p) // checked by Validate
			cf.Config.ExposedPorts[port] = struct{}{}
		}
	}
	return cf
}

// buildImage compresses the tree into the layer file at blob and makes
// the image of it: OCI media types for an OCI layer, Docker's for a
// Docker one.
func buildImage(ctx context.Context, blob, tree string, cfg *Config, created time.Time, mediaType types.MediaType, progress func(done, total int64)) (*layer, v1.Image, error) {
	l, v1l, err := compressLayer(ctx, tree, blob, cfg.CompressionLevel, mediaType, progress)
	if err != nil {
		return nil, nil, err
	}
	img, err := mutate.ConfigFile(empty.Image, cfg.configFile(created))
	if err != nil {
		return nil, nil, err
	}
	if mediaType == types.OCILayer {
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     v1l,
		MediaType: mediaType,
		History:   v1.History{Created: v1.Time{Time: created}, CreatedBy: "imgbuild oci_image(): the root file system tree " + filepath.Base(tree), Comment: "imgbuild"},
	})
	if err != nil {
		return nil, nil, err
	}
	return l, img, nil
}

// writeLayout writes the image as an OCI image layout in dir, one entry
// of its index per tag. The layer is compressed straight into the
// layout's blobs, which go-containerregistry then finds written.
func writeLayout(ctx context.Context, dir, tree string, cfg *Config, refs []name.Tag, created time.Time, progress func(done, total int64)) (*layer, v1.Image, error) {
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return nil, nil, err
	}
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, nil, err
	}
	tmp := filepath.Join(blobs, ".layer.tmp")
	l, img, err := buildImage(ctx, tmp, tree, cfg, created, types.OCILayer, progress)
	if err != nil {
		return nil, nil, err
	}
	l.path = filepath.Join(blobs, l.digest.Hex)
	if err := os.Rename(tmp, l.path); err != nil {
		return nil, nil, err
	}
	for _, r := range refs {
		if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": r.TagStr(),
			"io.containerd.image.name":          r.Name(),
		})); err != nil {
			return nil, nil, fmt.Errorf("writing the image layout: %w", err)
		}
	}
	return l, img, nil
}

// writeArchive writes the image as a docker-archive tar to w, with one
// repository:tag per reference, reporting progress.
func writeArchive(w *os.File, img v1.Image, refs []name.Tag, report func(label string, done, total int64, unit string)) error {
	byRef := map[name.Reference]v1.Image{}
	for _, r := range refs {
		byRef[r] = img
	}
	updates := make(chan v1.Update, 16)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		last := int64(-1)
		for u := range updates {
			if u.Total > 0 && u.Error == nil {
				if pct := u.Complete * 100 / u.Total; pct != last {
					last = pct
					report("docker-archive", u.Complete, u.Total, "bytes")
				}
			}
		}
	}()
	err := tarball.MultiRefWrite(byRef, w, tarball.WithProgress(updates))
	close(updates) // its sends are done: it writes synchronously
	<-drained
	return err
}

// filesUnder lists the regular files under dir as the workspace shows
// them, sorted: each gets its SHA-256 in the manifest.
func filesUnder(dir string, outs *output.Set) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, outs.Show(p))
		}
		return nil
	})
	slices.Sort(files)
	return files, err
}
