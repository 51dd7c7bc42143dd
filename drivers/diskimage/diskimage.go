// Package diskimage is the disk_image() post-processor: it converts the
// disk of a qemu() or rootfs() build into the format a platform imports,
// through qemu-img: a VHD as Azure takes it (fixed, its virtual size a
// whole MiB, the footer's size exact), a VHDX for Hyper-V, a VMDK, a raw
// disk or a qcow2. The result is checked with qemu-img before it joins
// the artifact.
//
// It knows nothing of Starlark.
package diskimage

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/drivers/diskpost"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
)

// Name is the post-processor's name in descriptions.
const Name = "disk_image"

// Config is disk_image()'s configuration.
type Config struct {
	Format            string `kw:"format,required" enum:"vhd|vhdx|raw|qcow2|vmdk" doc:"The format to write: vhd (Azure, Hyper-V generation 1), vhdx (Hyper-V), raw, qcow2 or vmdk."`
	Output            string `kw:"output" default:"output/{build}/{build}.{format}" path:"output" pathvars:"format=format" doc:"The image file, relative to the workspace ({build} is the build's name, {format} the format)."`
	DiskSize          string `kw:"disk_size" doc:"Grow the disk to this size (\"30G\"); \"\" keeps its size (a VHD's rounded up to a whole MiB, as Azure needs). A VHD's must be a whole number of MiB."`
	Subformat         string `kw:"subformat" doc:"vhd: fixed (default, what Azure takes) or dynamic; vhdx: dynamic (default) or fixed; vmdk: streamOptimized (default, for uploads and OVF), monolithicSparse (VMware Workstation) or monolithicFlat."`
	Compress          bool   `kw:"compress" default:"False" doc:"Compress a qcow2's clusters (on every core): smaller, slower to write."`
	KeepInputArtifact bool   `kw:"keep_input_artifact" default:"True" doc:"Keep the input's files in the artifact passed on (the image joins them); False passes on the image alone."`
	Force             bool   `kw:"force" default:"False" doc:"Also replace an image imgbuild made for another build (one of this build's earlier runs is replaced anyway; a file imgbuild did not make never is)."`
}

// subformats are each format's subformats, the default first.
var subformats = map[string][]string{
	"vhd":  {"fixed", "dynamic"},
	"vhdx": {"dynamic", "fixed"},
	"vmdk": {"streamOptimized", "monolithicSparse", "monolithicFlat"},
}

// maxSize is each format's largest virtual size.
var maxSize = map[string]int64{
	"vhd":  2040 << 30, // qemu-img writes no larger VHD
	"vhdx": 64 << 40,
}

// Validate implements schema.Validator.
func (c *Config) Validate(deferred schema.Deferred) error {
	if deferred.Has("format") {
		return nil
	}
	if c.Subformat != "" && !deferred.Has("subformat") {
		subs, ok := subformats[c.Format]
		if !ok {
			return schema.Errorf("subformat", "a %s image has no subformats: leave subformat out", c.Format)
		}
		if !slices.Contains(subs, c.Subformat) {
			msg := fmt.Sprintf("%q is not a subformat of %s (it has %s)", c.Subformat, c.Format, strings.Join(subs, ", "))
			if near := schema.Nearest(c.Subformat, subs); near != "" {
				msg += fmt.Sprintf("; did you mean %q?", near)
			}
			return schema.Errorf("subformat", "%s", msg)
		}
	}
	if c.Compress && c.Format != "qcow2" {
		return schema.Errorf("compress", "compresses a qcow2, but format is %q", c.Format)
	}
	if c.DiskSize != "" && !deferred.Has("disk_size") {
		if _, err := c.size(); err != nil {
			return schema.Errorf("disk_size", "%v", err)
		}
	}
	return nil
}

// size is disk_size in bytes (0 when unset), checked against the format.
func (c *Config) size() (int64, error) {
	if c.DiskSize == "" {
		return 0, nil
	}
	n, err := qemuimg.ParseSize(c.DiskSize)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("%q is no size: leave disk_size out to keep the disk's", c.DiskSize)
	}
	if c.Format == "vhd" && n%qemuimg.MiB != 0 {
		return 0, fmt.Errorf("%s (%d bytes) is not a whole number of MiB: Azure takes a VHD only when its virtual size is aligned to 1 MiB; use %s", c.DiskSize, n, qemuimg.FormatSize(qemuimg.RoundUpMiB(n)))
	}
	if m, ok := maxSize[c.Format]; ok && n > m {
		return 0, fmt.Errorf("%s is larger than a %s can be (%s)", c.DiskSize, c.Format, qemuimg.FormatSize(m))
	}
	return n, nil
}

// subformat is the subformat written: the one set, else the format's
// default.
func (c *Config) subformat() string {
	if c.Subformat != "" {
		return c.Subformat
	}
	if subs := subformats[c.Format]; len(subs) > 0 {
		return subs[0]
	}
	return ""
}

// qemuFormat is qemu-img's name of the format, and its creation options.
func (c *Config) qemuFormat() (string, []string) {
	switch c.Format {
	case "vhd":
		// force_size keeps the size asked for, where qemu-img would
		// otherwise round it to a CHS geometry (Azure refuses those).
		return "vpc", []string{"subformat=" + c.subformat(), "force_size=on"}
	case "vhdx", "vmdk":
		return c.Format, []string{"subformat=" + c.subformat()}
	}
	return c.Format, nil
}

var formats = []string{"vhd", "vhdx", "raw", "qcow2", "vmdk"}

// Def declares disk_image().
func Def() *engine.PostProcessorDef {
	var outs []engine.Output
	for _, f := range formats {
		outs = append(outs,
			engine.Output{Name: f, Doc: "The " + f + " disk_image(format = \"" + f + "\") made, relative to the workspace."},
			engine.Output{Name: f + "_checksum", Doc: "\"sha256:<hex>\" of the " + f + " image."})
	}
	return &engine.PostProcessorDef{
		Schema: schema.Of(Name,
			"Converts the build's disk (qemu(), rootfs()) into the format a platform imports, with qemu-img: vhd as Azure takes it (fixed, a whole number of MiB), vhdx for Hyper-V, vmdk, raw or qcow2; checked with qemu-img, it joins the artifact.",
			&Config{}),
		Outputs: outs,
		Provides: func(settings *value.Map) []string {
			v, ok := settings.Get("format")
			s, isString := v.(value.String)
			if !ok || !isString {
				return nil
			}
			return []string{s.S, s.S + "_checksum"}
		},
		New: engine.Typed("disk_image", func(cfg *Config) engine.PostProcessor { return &Image{cfg: cfg} }),
	}
}

// Register adds disk_image() to r.
func Register(r *engine.Registry) { r.AddPostProcessor(Def()) }

// Image is the disk_image() post-processor.
type Image struct {
	cfg *Config
}

// PostProcess implements engine.PostProcessor.
func (p *Image) PostProcess(ctx context.Context, env *engine.PostEnv, in *engine.Artifact) (*engine.Artifact, error) {
	cfg := p.cfg
	disk, err := diskpost.Of(ctx, env, in, "disk_image()")
	if err != nil {
		return nil, err
	}
	size, err := cfg.size()
	if err != nil {
		return nil, fmt.Errorf("disk_size: %w", err)
	}
	if cfg.Format == "vhd" && size == 0 && disk.Info.VirtualSize%qemuimg.MiB != 0 {
		size = qemuimg.RoundUpMiB(disk.Info.VirtualSize)
		env.UI.Say("disk_image: the disk is %d bytes, not a whole number of MiB: the VHD is grown to %s, as Azure needs", disk.Info.VirtualSize, qemuimg.FormatSize(size))
	}
	if m, ok := maxSize[cfg.Format]; ok && max(size, disk.Info.VirtualSize) > m {
		return nil, fmt.Errorf("the disk %s is %s, larger than a %s can be (%s)", disk.Rel, qemuimg.HumanSize(disk.Info.VirtualSize), cfg.Format, qemuimg.FormatSize(m))
	}
	want := disk.Info.VirtualSize
	if size > 0 {
		want = size
	}
	format, options := cfg.qemuFormat()
	outs := env.OutputSet().Forced(cfg.Force)
	rel := strings.ReplaceAll(output.Expand(cfg.Output, env.Build, env.Driver), "{format}", cfg.Format)
	start := time.Now()
	shown, fileSize, err := diskpost.WriteOutput(outs, rel, "output", func(f *output.File) error {
		if err := disk.Convert(ctx, env.UI, "convert to "+cfg.Format, f.Path(), format, options, size, cfg.Compress); err != nil {
			return err
		}
		return verify(ctx, f.Path(), format, cfg.subformat(), want)
	})
	if err != nil {
		return nil, err
	}
	sum, err := qemuimg.SHA256(ctx, outs.Abs(shown))
	if err != nil {
		return nil, err
	}
	kind := cfg.Format
	if sub := cfg.subformat(); sub != "" {
		kind += " (" + sub + ")"
	}
	env.UI.Say("disk_image: %s made in %s: %s, virtual size %s, file %s", shown, time.Since(start).Round(100*time.Millisecond), kind, qemuimg.HumanSize(want), qemuimg.HumanSize(fileSize))
	return diskpost.Pass(in, cfg.KeepInputArtifact, in.Platform, shown, []string{shown}, map[string]any{
		cfg.Format: shown, cfg.Format + "_checksum": "sha256:" + sum,
	}), nil
}

// verify reads the image back with qemu-img as the platform would: its
// format, its virtual size, qemu-img check where the format has checks,
// and for a fixed VHD the layout Azure checks (the data, then one 512-byte
// footer).
func verify(ctx context.Context, path, format, subformat string, size int64) error {
	info, err := qemuimg.ReadInfo(ctx, path, format)
	if err != nil {
		return err
	}
	if info.Format != format || info.VirtualSize != size {
		return fmt.Errorf("qemu-img reads the result as %s of %d bytes, not the %s of %d bytes written", info.Format, info.VirtualSize, format, size)
	}
	if _, err := qemuimg.Check(ctx, path, format); err != nil {
		return err
	}
	if format == "vpc" && subformat == "fixed" {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if fi.Size() != size+512 {
			return fmt.Errorf("the fixed VHD is %d bytes, not its virtual size and a 512-byte footer (%d)", fi.Size(), size+512)
		}
	}
	return nil
}
