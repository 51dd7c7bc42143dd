// Package vagrant holds the vagrant_box() and vagrant_catalog()
// post-processors.
//
// vagrant_box() packs the disk of a qemu() or rootfs() build into a
// Vagrant box for one provider: a tar archive (gzip-compressed on every
// core by default) holding metadata.json, a Vagrantfile and the
// provider's files:
//   - libvirt (vagrant-libvirt): box.img, the disk as qcow2; when the
//     artifact boots a kernel directly (its kernel, initrd and append
//     fields), the kernel and initrd too, booted by its Vagrantfile, since
//     such a disk holds a file system and no boot loader;
//   - virtualbox: box.ovf (an OVF descriptor, as drivers/ova writes it)
//     and a streamOptimized VMDK, what VBoxManage import takes, and a
//     Vagrantfile with the base MAC the machine's adapter gets;
//   - vmware_desktop (vagrant-vmware-desktop): a .vmx and a
//     monolithicSparse VMDK, as drivers/vmware writes them.
//
// One build may make several boxes, one vagrant_box() per provider; each
// box's path and SHA-256 stay in the artifact (boxes, box_checksums) for
// vagrant_catalog(), which writes the versioned catalog (metadata.json)
// that vagrant box add reads.
//
// Boxes are written under a temporary name and moved into place when
// complete, so that a failed or interrupted build never leaves half a
// box. The package knows nothing of Starlark or of the build graph.
package vagrant

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
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
const Name = "vagrant_box"

// Providers are the providers a box can be made for.
var Providers = []string{"libvirt", "virtualbox", "vmware_desktop"}

// Config is vagrant_box()'s configuration.
type Config struct {
	Provider          string `kw:"provider" default:"libvirt" enum:"libvirt|virtualbox|vmware_desktop" doc:"The provider the box is for: libvirt (vagrant-libvirt), virtualbox, or vmware_desktop (vagrant-vmware-desktop). One vagrant_box() per provider makes several boxes."`
	Output            string `kw:"output" default:"output/{build}/{build}-{provider}.box" path:"output" pathvars:"provider=provider" doc:"The box file, relative to the workspace ({build} is the build's name, {provider} the provider)."`
	Compression       string `kw:"compression" default:"gzip" enum:"gzip|none" doc:"gzip makes a .box Vagrant reads as tar.gz (compressed on every core); none a plain tar (the disk inside may already be compressed)."`
	CompressionLevel  int    `kw:"compression_level" default:"1" doc:"gzip level, 1 (fast) to 9 (small)."`
	Memory            int    `kw:"memory" default:"1024" doc:"Memory in MiB the box gives the machine."`
	CPUs              int    `kw:"cpus" default:"1" doc:"Virtual CPUs the box gives the machine."`
	BaseMAC           string `kw:"base_mac" doc:"virtualbox: the MAC address of the machine's first adapter (12 hex digits); \"\" derives one from the build's name in VirtualBox's range (08:00:27)."`
	GuestOSType       string `kw:"guest_os_type" doc:"virtualbox: VMware's guest id the OVF's operating system comes from (default debian12_64Guest); vmware_desktop: the .vmx guestOS (default debian12-64)."`
	Vagrantfile       string `kw:"vagrantfile" path:"file" doc:"A Vagrantfile to ship in the box instead of the one made from the artifact."`
	KeepInputArtifact bool   `kw:"keep_input_artifact" default:"True" doc:"Keep the input's files in the artifact passed on (the box joins them); False passes on the box alone (and the build's other boxes, for vagrant_catalog())."`
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
	if c.BaseMAC != "" {
		if c.Provider != "virtualbox" {
			return schema.Errorf("base_mac", "is for provider = \"virtualbox\" (this box is for %s)", c.Provider)
		}
		if _, err := parseMAC(c.BaseMAC); err != nil {
			return schema.Errorf("base_mac", "%v", err)
		}
	}
	if c.GuestOSType != "" && !deferred.Has("guest_os_type") {
		if err := checkGuestOS(c.Provider, c.GuestOSType); err != nil {
			return schema.Errorf("guest_os_type", "%v", err)
		}
	}
	return nil
}

// Def declares vagrant_box().
func Def() *engine.PostProcessorDef {
	outs := []engine.Output{{Name: "box", Doc: "The box file, relative to the workspace (when the build makes several, refer to box_<provider>)."}}
	for _, p := range Providers {
		outs = append(outs, engine.Output{Name: "box_" + p, Doc: "The " + p + " box."})
	}
	return &engine.PostProcessorDef{
		Schema: schema.Of(Name,
			"Packs the build's disk (qemu(), rootfs()) into a Vagrant box for one provider: libvirt (box.img, the kernel and initrd when the disk boots them directly), virtualbox (box.ovf and a streamOptimized VMDK, a Vagrantfile with the base MAC) or vmware_desktop (.vmx and a monolithicSparse VMDK), each with metadata.json and a Vagrantfile. The box joins the artifact.",
			&Config{}),
		Outputs: outs,
		Provides: func(settings *value.Map) []string {
			p := "libvirt"
			if v, ok := settings.Get("provider"); ok {
				if s, ok := v.(value.String); ok {
					p = s.S
				}
			}
			return []string{"box", "box_" + p}
		},
		New: engine.Typed("vagrant_box", func(cfg *Config) engine.PostProcessor { return &Box{cfg: cfg} }),
	}
}

// Register adds vagrant_box() and vagrant_catalog() to r.
func Register(r *engine.Registry) {
	r.AddPostProcessor(Def())
	r.AddPostProcessor(CatalogDef())
}

// Box is the vagrant_box() post-processor.
type Box struct {
	cfg *Config
}

// Metadata is a box's metadata.json.
type Metadata struct {
	Provider    string `json:"provider"`
	Format      string `json:"format,omitempty"`       // libvirt: qcow2
	VirtualSize int64  `json:"virtual_size,omitempty"` // libvirt: GiB, rounded up
}

// contents are a box's members, made in the build's scratch directory.
type contents struct {
	members []diskpost.Member
	// what says what the box holds, for the message.
	what string
}

// PostProcess implements engine.PostProcessor.
func (p *Box) PostProcess(ctx context.Context, env *engine.PostEnv, in *engine.Artifact) (*engine.Artifact, error) {
	cfg := p.cfg
	disk, err := diskpost.Of(ctx, env, in, "vagrant_box()")
	if err != nil {
		return nil, err
	}
	outs := env.OutputSet().Forced(cfg.Force)
	rel := strings.ReplaceAll(output.Expand(cfg.Output, env.Build, env.Driver), "{provider}", cfg.Provider)
	if err := outs.Check(rel, "output"); err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp(env.WorkDir, "vagrant-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	start := time.Now()
	var c *contents
	switch cfg.Provider {
	case "virtualbox":
		c, err = p.virtualbox(ctx, env, disk, scratch)
	case "vmware_desktop":
		c, err = p.vmware(ctx, env, disk, scratch)
	default:
		c, err = p.libvirt(ctx, env, disk, scratch)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Vagrantfile != "" {
		data, err := os.ReadFile(disk.Abs(cfg.Vagrantfile))
		if err != nil {
			return nil, fmt.Errorf("vagrantfile: %w", err)
		}
		for i := range c.members {
			if c.members[i].Name == "Vagrantfile" {
				c.members[i].Data = data
			}
		}
	}
	var sum string
	shown, size, err := diskpost.WriteOutput(outs, rel, "output", func(f *output.File) error {
		var err error
		sum, err = diskpost.WriteArchive(ctx, f.File, c.members, diskpost.ArchiveOptions{
			Gzip: cfg.Compression == "gzip", Level: cfg.CompressionLevel,
			Progress: func(done, total int64) { env.UI.Progress("box", done, total, "bytes") },
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	env.UI.Say("Vagrant box %s made in %s (%s, %s provider%s)", shown, time.Since(start).Round(100*time.Millisecond), qemuimg.HumanSize(size), cfg.Provider, c.what)

	// The build's boxes so far, whatever the post-processors before kept.
	boxes, sums := map[string]string{}, map[string]string{}
	if m, ok := in.Fields["boxes"].(map[string]string); ok {
		maps.Copy(boxes, m)
	}
	if m, ok := in.Fields["box_checksums"].(map[string]string); ok {
		maps.Copy(sums, m)
	}
	boxes[cfg.Provider], sums[cfg.Provider] = shown, "sha256:"+sum
	next := diskpost.Pass(in, cfg.KeepInputArtifact, "vagrant", shown, []string{shown}, map[string]any{
		"box": shown, "box_" + cfg.Provider: shown, "provider": cfg.Provider, "boxes": boxes, "box_checksums": sums,
	})
	if !cfg.KeepInputArtifact {
		for p, b := range boxes {
			next.Fields["box_"+p] = b
		}
	}
	return next, nil
}

// metadata is a box's metadata.json member.
func metadata(m Metadata) diskpost.Member {
	data, _ := json.MarshalIndent(m, "", "  ")
	return diskpost.Member{Name: "metadata.json", Data: append(data, '\n')}
}
