package diskpost

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
)

// Disk is the disk of a build's artifact, as a post-processor converting
// it sees it.
type Disk struct {
	// Build and Driver made it.
	Build, Driver string
	// Path is absolute; Rel is as the artifact names it.
	Path, Rel string
	// Format is qemu-img's name of its format ("qcow2", "raw").
	Format string
	Info   *qemuimg.Info
	// Kernel and Initrd (absolute) and Append are set when the disk holds
	// a file system and no boot loader, and is booted with its kernel
	// directly (a rootfs() disk, and a qemu() build of one).
	Kernel, Initrd, Append string
	// Workspace is the build's workspace, absolute.
	Workspace string
}

// Abs is p, relative to the workspace, made absolute.
func (d *Disk) Abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.Workspace, p)
}

// Of finds the disk of the artifact in: its disk and format fields, as
// qemu() and rootfs() set them, checked with qemu-img. who is the
// post-processor ("ova()"), for messages; an artifact with no disk is an
// error that says which build made what.
func Of(ctx context.Context, env *engine.PostEnv, in *engine.Artifact, who string) (*Disk, error) {
	field := func(name string) string {
		s, _ := in.Fields[name].(string)
		return s
	}
	rel := field("disk")
	if rel == "" {
		return nil, NotADisk(in, who)
	}
	ws, err := workspace(env)
	if err != nil {
		return nil, err
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(ws, p)
	}
	d := &Disk{Build: in.Build, Driver: in.Driver, Path: abs(rel), Rel: rel, Format: field("format"), Workspace: ws}
	if d.Info, err = qemuimg.Inspect(ctx, d.Path); err != nil {
		return nil, err
	}
	if d.Format == "" {
		d.Format = d.Info.Format
	}
	if d.Info.Format != d.Format {
		return nil, fmt.Errorf("the disk %s of build %q is %s, not the %s its build says", rel, in.Build, d.Info.Format, d.Format)
	}
	if d.Info.Backing != "" {
		return nil, fmt.Errorf("the disk %s of build %q has a backing file (%s): %s needs the whole disk", rel, in.Build, d.Info.Backing, who)
	}
	if k := field("kernel"); k != "" {
		d.Kernel, d.Initrd, d.Append = abs(k), abs(field("initrd")), field("append")
	}
	return d, nil
}

// NotADisk is the error for an artifact without a disk: which build made
// what, and what would do.
func NotADisk(in *engine.Artifact, who string) error {
	made := Describe(in)
	if tar, _ := in.Fields["tar"].(string); tar != "" {
		return fmt.Errorf("build %q (%s) made no disk, only the tar %s: %s converts a disk; add \"qcow2\" or \"raw\" to its formats", in.Build, in.Driver, tar, who)
	}
	return fmt.Errorf("build %q (%s) made %s, which is not a disk: %s converts the disk of a qemu() or rootfs() build", in.Build, in.Driver, made, who)
}

// Describe says what an artifact is, for messages.
func Describe(in *engine.Artifact) string {
	var b strings.Builder
	if in.ID != "" {
		fmt.Fprintf(&b, "%q", in.ID)
	} else {
		b.WriteString("an artifact")
	}
	if len(in.Files) > 0 {
		files := in.Files
		more := ""
		if len(files) > 3 {
			files, more = files[:3], fmt.Sprintf(" and %d more", len(in.Files)-3)
		}
		fmt.Fprintf(&b, " (files %s%s)", strings.Join(files, ", "), more)
	} else {
		b.WriteString(" with no files")
	}
	return b.String()
}

// workspace is the post-processor's workspace, absolute.
func workspace(env *engine.PostEnv) (string, error) {
	ws := env.Workspace
	if ws == "" {
		ws = "."
	}
	return filepath.Abs(ws)
}

// WarnIfNoBootLoader tells the user that a disk booted with its kernel
// directly will not boot on platform, which boots disks through their
// firmware only.
func (d *Disk) WarnIfNoBootLoader(ui *event.UI, platform string) {
	if d.Kernel == "" {
		return
	}
	ui.Warn("the disk %s holds a file system and no boot loader (build %q boots it with its kernel directly): %s boots a disk through its firmware, so the machine made from it will not start until the image has a boot loader", d.Rel, d.Build, platform)
}

// Convert writes the disk to out in format with the creation options,
// grown to size when size is set; progress shows under label.
func (d *Disk) Convert(ctx context.Context, ui *event.UI, label, out, format string, options []string, size int64, compress bool) error {
	return qemuimg.Convert(ctx, qemuimg.ConvertOptions{
		In: d.Path, InFormat: d.Format, Out: out, Format: format, Options: options, Size: size, Compress: compress,
		Progress: func(done, total int64) { ui.Progress(label, done, total, "%") },
	})
}

// Pass returns the artifact a post-processor passes on: the input's files
// and fields when keep is set, then its own files and fields; id is the
// new artifact's id.
func Pass(in *engine.Artifact, keep bool, platform, id string, files []string, fields map[string]any) *engine.Artifact {
	next := &engine.Artifact{ID: id, Platform: platform, Fields: map[string]any{}}
	if keep {
		next.Files = slices.Clone(in.Files)
		for k, v := range in.Fields {
			next.Fields[k] = v
		}
	}
	for _, f := range files {
		if !slices.Contains(next.Files, f) {
			next.Files = append(next.Files, f)
		}
	}
	for k, v := range fields {
		next.Fields[k] = v
	}
	return next
}
