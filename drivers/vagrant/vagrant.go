// Package vagrant is the vagrant_box() post-processor: it packs a qcow2
// artifact (from qemu() or rootfs()) into a Vagrant box for the libvirt
// provider (vagrant-libvirt): a tar archive, gzip-compressed by default,
// holding box.img (the disk), metadata.json and a Vagrantfile. When the
// artifact boots a kernel directly (its kernel, initrd and append fields),
// the box carries them too and its Vagrantfile boots them, since such a
// disk holds a file system and no boot loader.
//
// The box is written under a temporary name and renamed when complete, so
// that a failed or interrupted build never leaves half a box. It knows
// nothing of Starlark or of the build graph.
package vagrant

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// Name is the post-processor's name in descriptions.
const Name = "vagrant_box"

// Config is vagrant_box()'s configuration.
type Config struct {
	Output            string `kw:"output" default:"output/{build}/{build}.box" path:"output" doc:"The box file, relative to the workspace ({build} is the build's name)."`
	Compression       string `kw:"compression" default:"gzip" enum:"gzip|none" doc:"gzip makes a .box Vagrant reads as tar.gz; none a plain tar (the qcow2 inside may already be compressed)."`
	CompressionLevel  int    `kw:"compression_level" default:"1" doc:"gzip level, 1 (fast) to 9 (small)."`
	Memory            int    `kw:"memory" default:"1024" doc:"Memory in MiB the box's Vagrantfile gives the machine."`
	CPUs              int    `kw:"cpus" default:"1" doc:"Virtual CPUs the box's Vagrantfile gives the machine."`
	Vagrantfile       string `kw:"vagrantfile" path:"file" doc:"A Vagrantfile to ship in the box instead of the one made from the artifact."`
	KeepInputArtifact bool   `kw:"keep_input_artifact" default:"True" doc:"Keep the input's files in the artifact passed on (the box joins them); False passes on the box alone."`
	Force             bool   `kw:"force" default:"False" doc:"Also replace a box imgbuild made for another build (a box of this build's earlier run is replaced anyway; a file imgbuild did not make never is)."`
}

// Validate implements schema.Validator.
func (c *Config) Validate(deferred schema.Deferred) error {
	if c.CompressionLevel < 1 || c.CompressionLevel > 9 {
		return schema.Errorf("compression_level", "%d is not between 1 (fast) and 9 (small)", c.CompressionLevel)
	}
	if c.Memory < 64 {
		return schema.Errorf("memory", "%d MiB is too little to boot", c.Memory)
	}
	if c.CPUs < 1 {
		return schema.Errorf("cpus", "%d is less than 1", c.CPUs)
	}
	if !deferred.Has("output") && !strings.HasSuffix(c.Output, ".box") {
		return schema.Errorf("output", "%q should end in .box, the name Vagrant expects", c.Output)
	}
	return nil
}

// Def declares vagrant_box().
func Def() *engine.PostProcessorDef {
	return &engine.PostProcessorDef{
		Schema: schema.Of(Name,
			"Packs the build's qcow2 disk into a Vagrant box for the libvirt provider (box.img, metadata.json, Vagrantfile; the kernel and initrd too when the disk boots them directly). The box joins the artifact's files.",
			&Config{}),
		New: func(config any) (engine.PostProcessor, error) {
			cfg, ok := config.(*Config)
			if !ok {
				return nil, fmt.Errorf("vagrant_box: config is %T, want *vagrant.Config", config)
			}
			return &Box{cfg: cfg}, nil
		},
	}
}

// Register adds vagrant_box() to r.
func Register(r *engine.Registry) { r.AddPostProcessor(Def()) }

// Box is the vagrant_box() post-processor.
type Box struct {
	cfg *Config
}

// Metadata is a libvirt box's metadata.json.
type Metadata struct {
	Provider    string `json:"provider"`
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual_size"` // GiB, rounded up
}

// PostProcess implements engine.PostProcessor.
func (p *Box) PostProcess(ctx context.Context, env *engine.PostEnv, in *engine.Artifact) (*engine.Artifact, error) {
	ws := env.Workspace
	if ws == "" {
		ws = "."
	}
	ws, err := filepath.Abs(ws)
	if err != nil {
		return nil, err
	}
	inWS := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(ws, p)
	}
	field := func(name string) string {
		s, _ := in.Fields[name].(string)
		return s
	}
	disk, format := field("disk"), field("format")
	switch {
	case disk == "":
		return nil, fmt.Errorf("the artifact of %q has no disk field: vagrant_box() packs the disk of a qemu() or rootfs() build", in.Build)
	case format != "qcow2":
		return nil, fmt.Errorf("the disk %s is %s, but a libvirt box holds a qcow2: set format = \"qcow2\" on the build", disk, orUnknown(format))
	}
	diskPath := inWS(disk)
	info, err := qemuimg.Inspect(ctx, diskPath)
	if err != nil {
		return nil, err
	}
	if info.Format != "qcow2" {
		return nil, fmt.Errorf("the disk %s is %s, not the qcow2 its build says", disk, info.Format)
	}
	if info.Backing != "" {
		return nil, fmt.Errorf("the disk %s has a backing file (%s): a box must hold the whole disk", disk, info.Backing)
	}

	outs := env.OutputSet().Forced(p.cfg.Force)
	rel := output.Expand(p.cfg.Output, env.Build, env.Driver)
	if err := outs.Check(rel, "output"); err != nil {
		return nil, err
	}

	files := []boxFile{{name: "box.img", path: diskPath}}
	kernel, initrd, cmdline := inWS(field("kernel")), inWS(field("initrd")), field("append")
	if kernel != "" {
		files = append(files, boxFile{name: "vmlinuz", path: kernel})
		if initrd != "" {
			files = append(files, boxFile{name: "initrd.img", path: initrd})
		}
	}
	meta, _ := json.MarshalIndent(Metadata{Provider: "libvirt", Format: "qcow2", VirtualSize: (info.VirtualSize + 1<<30 - 1) >> 30}, "", "  ")
	files = append(files, boxFile{name: "metadata.json", data: append(meta, '\n')})
	vagrantfile := []byte(Vagrantfile(in.Build, p.cfg.Memory, p.cfg.CPUs, kernel != "", initrd != "", cmdline))
	if p.cfg.Vagrantfile != "" {
		if vagrantfile, err = os.ReadFile(inWS(p.cfg.Vagrantfile)); err != nil {
			return nil, fmt.Errorf("vagrantfile: %w", err)
		}
	}
	files = append(files, boxFile{name: "Vagrantfile", data: vagrantfile})

	start := time.Now()
	f, err := outs.Create(rel, "output")
	if err != nil {
		return nil, err
	}
	if err := p.write(ctx, env, f.File, files); err != nil {
		f.Discard()
		return nil, fmt.Errorf("writing the box %s: %w", f.Rel(), err)
	}
	out, err := f.Place()
	if err != nil {
		f.Discard()
		return nil, err
	}
	fi, _ := os.Stat(out)
	env.UI.Say("Vagrant box %s made in %s (%s, libvirt provider%s)", outs.Show(out), time.Since(start).Round(100*time.Millisecond), qemuimg.HumanSize(fi.Size()), map[bool]string{true: ", boots its kernel directly", false: ""}[kernel != ""])

	next := &engine.Artifact{ID: outs.Show(out), Platform: "vagrant", Fields: map[string]any{}}
	if p.cfg.KeepInputArtifact {
		next.Files = append(next.Files, in.Files...)
		for k, v := range in.Fields {
			next.Fields[k] = v
		}
	}
	next.Files = append(next.Files, outs.Show(out))
	next.Fields["box"] = outs.Show(out)
	next.Fields["provider"] = "libvirt"
	return next, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "of an unknown format"
	}
	return s
}

// boxFile is one member of the box: a file's content or data.
type boxFile struct {
	name string
	path string
	data []byte
}

// write packs files into f.
func (p *Box) write(ctx context.Context, env *engine.PostEnv, f *os.File, files []boxFile) error {
	bw := bufio.NewWriterSize(f, 1<<20)
	var w io.Writer = bw
	var zw *gzip.Writer
	if p.cfg.Compression == "gzip" {
		zw, _ = gzip.NewWriterLevel(bw, p.cfg.CompressionLevel)
		w = zw
	}
	tw := tar.NewWriter(w)
	var total, done int64
	lastPct := int64(-1)
	for _, bf := range files {
		if bf.path != "" {
			fi, err := os.Stat(bf.path)
			if err != nil {
				return err
			}
			total += fi.Size()
		}
	}
	return func() error {
		for _, bf := range files {
			hdr := &tar.Header{Name: bf.name, Mode: 0o644, Typeflag: tar.TypeReg, Format: tar.FormatPAX, ModTime: time.Unix(0, 0)}
			var src io.Reader
			if bf.path != "" {
				in, err := os.Open(bf.path)
				if err != nil {
					return err
				}
				defer in.Close()
				fi, err := in.Stat()
				if err != nil {
					return err
				}
				hdr.Size, hdr.ModTime = fi.Size(), fi.ModTime().Truncate(time.Second)
				src = in
			} else {
				hdr.Size = int64(len(bf.data))
				src = strings.NewReader(string(bf.data))
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			buf := make([]byte, 1<<20)
			for {
				if err := ctx.Err(); err != nil {
					return context.Cause(ctx)
				}
				n, rerr := src.Read(buf)
				if n > 0 {
					if _, err := tw.Write(buf[:n]); err != nil {
						return err
					}
					if bf.path != "" {
						done += int64(n)
						if pct := done * 100 / max(total, 1); pct != lastPct {
							lastPct = pct
							env.UI.Progress("box", done, total, "bytes")
						}
					}
				}
				if rerr == io.EOF {
					break
				}
				if rerr != nil {
					return rerr
				}
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
		if zw != nil {
			if err := zw.Close(); err != nil {
				return err
			}
		}
		return bw.Flush()
	}()
}

// Vagrantfile is the box's Vagrantfile: libvirt with memory and cpus, and
// the box's own kernel, initrd and command line when the disk boots them
// directly.
func Vagrantfile(build string, memory, cpus int, kernel, initrd bool, cmdline string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Made by imgbuild's vagrant_box() for the build %q.\n", build)
	b.WriteString("Vagrant.configure(\"2\") do |config|\n")
	b.WriteString("  config.vm.provider :libvirt do |libvirt|\n")
	b.WriteString("    libvirt.driver = \"kvm\"\n")
	fmt.Fprintf(&b, "    libvirt.memory = %d\n", memory)
	fmt.Fprintf(&b, "    libvirt.cpus = %d\n", cpus)
	if kernel {
		b.WriteString("    # The disk holds a file system and no boot loader: boot the box's kernel.\n")
		b.WriteString("    libvirt.kernel = File.join(File.dirname(__FILE__), \"vmlinuz\")\n")
		if initrd {
			b.WriteString("    libvirt.initrd = File.join(File.dirname(__FILE__), \"initrd.img\")\n")
		}
		if cmdline == "" {
			cmdline = "root=/dev/vda ro console=ttyS0,115200n8"
		}
		fmt.Fprintf(&b, "    libvirt.cmd_line = %s\n", rubyString(cmdline))
	}
	b.WriteString("  end\n")
	b.WriteString("end\n")
	return b.String()
}

// rubyString quotes s as a Ruby double-quoted string literal.
func rubyString(s string) string {
	q := strconv.Quote(s)
	// Go's escapes are Ruby's, but "#{" interpolates in Ruby.
	return strings.ReplaceAll(q, "#{", `\#{`)
}
