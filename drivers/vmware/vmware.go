// Package vmware is the vmware_vmx() post-processor: it makes, from the
// disk of a qemu() or rootfs() build, a VMware Workstation or Fusion
// virtual machine folder (a .vmx file and a growable VMDK made by
// qemu-img) that those products open directly. Its Machine and VMX are
// shared with vagrant_box(provider = "vmware_desktop"), whose box holds
// the same files.
//
// It knows nothing of Starlark.
package vmware

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/imgbuild/imgbuild/drivers/diskpost"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// Name is the post-processor's name in descriptions.
const Name = "vmware_vmx"

// Settings are the machine's keywords, shared with vagrant_box.
type Settings struct {
	CPUs               int               `kw:"cpus" default:"1" doc:"Virtual CPUs of the machine."`
	Memory             int               `kw:"memory" default:"1024" doc:"Memory of the machine, in MiB."`
	GuestOSType        string            `kw:"guest_os_type" default:"debian12-64" doc:"The .vmx guestOS (debian12-64, ubuntu-64, otherlinux-64, ...), as Packer's vmware builders take it."`
	Version            int               `kw:"version" default:"13" doc:"virtualHW.version: 13 runs on Workstation 14 and Fusion 10 or later."`
	Firmware           string            `kw:"firmware" default:"bios" enum:"bios|efi" doc:"The firmware the machine boots with."`
	DiskAdapterType    string            `kw:"disk_adapter_type" default:"scsi" enum:"scsi|sata|nvme|ide" doc:"The disk's controller: scsi (LSI Logic), sata, nvme or ide."`
	Network            string            `kw:"network" default:"nat" enum:"nat|bridged|hostonly|none" doc:"How the machine's adapter connects: nat, bridged, hostonly, or none (no adapter)."`
	NetworkAdapterType string            `kw:"network_adapter_type" default:"e1000" enum:"e1000|e1000e|vmxnet3" doc:"The virtual network adapter."`
	VMXData            map[string]string `kw:"vmx_data" doc:"More .vmx entries, which win over the ones made from the other keywords (Packer's vmx_data)."`
}

// Config is vmware_vmx()'s configuration.
type Config struct {
	OutputDirectory   string   `kw:"output_directory" default:"output/{build}/vmware" path:"output" doc:"The VM folder, relative to the workspace ({build} is the build's name); Workstation and Fusion open the .vmx in it."`
	VMName            string   `kw:"vm_name" doc:"The machine's name (and its files' names); \"\" means the build's name."`
	DiskType          string   `kw:"disk_type" default:"monolithicSparse" enum:"monolithicSparse|twoGbMaxExtentSparse" doc:"The VMDK: one growable file, or growable 2 GiB extents (for file systems that hold no larger files)."`
	Settings          Settings `kw:",squash"`
	KeepInputArtifact bool     `kw:"keep_input_artifact" default:"True" doc:"Keep the input's files in the artifact passed on (the VM's join them); False passes on the VM's files alone."`
	Force             bool     `kw:"force" default:"False" doc:"Also replace a folder imgbuild made for another build (one of this build's earlier runs is replaced anyway; what imgbuild did not make never is)."`
}

var (
	guestOS = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	vmName  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$`)
)

// Validate checks the machine's settings.
func (s *Settings) Validate(deferred schema.Deferred) error {
	if s.CPUs < 1 || s.CPUs > 128 {
		return schema.Errorf("cpus", "%d is not between 1 and 128", s.CPUs)
	}
	if s.Memory < 64 || s.Memory%4 != 0 {
		return schema.Errorf("memory", "%d MiB is not a memory size VMware takes (64 or more, a multiple of 4)", s.Memory)
	}
	if !deferred.Has("guest_os_type") && !guestOS.MatchString(s.GuestOSType) {
		msg := fmt.Sprintf("%q is not a .vmx guestOS value (lower case, such as \"debian12-64\" or \"otherlinux-64\")", s.GuestOSType)
		if regexp.MustCompile(`Guest$`).MatchString(s.GuestOSType) {
			msg += "; it reads like a vSphere guest id, which ova() takes"
		}
		return schema.Errorf("guest_os_type", "%s", msg)
	}
	if s.Version < 4 || s.Version > 30 {
		return schema.Errorf("version", "%d is not a virtualHW.version (13 is a safe choice)", s.Version)
	}
	for k := range s.VMXData {
		if err := CheckKey(k); err != nil {
			return schema.Errorf("vmx_data", "%v", err)
		}
	}
	return nil
}

// Validate implements schema.Validator.
func (c *Config) Validate(deferred schema.Deferred) error {
	if c.VMName != "" && !deferred.Has("vm_name") && !vmName.MatchString(c.VMName) {
		return schema.Errorf("vm_name", "%q is not a machine name: letters, digits, '.', '_' and '-', at most 80", c.VMName)
	}
	return c.Settings.Validate(deferred)
}

// Machine is the machine the settings describe, named name, its disk in
// the file disk.
func (s *Settings) Machine(name, disk string) Machine {
	return Machine{Name: name, GuestOS: s.GuestOSType, CPUs: s.CPUs, MemoryMiB: s.Memory, HWVersion: s.Version, Firmware: s.Firmware,
		DiskAdapter: s.DiskAdapterType, Disk: disk, Network: s.Network, NetworkAdapter: s.NetworkAdapterType, Extra: maps.Clone(s.VMXData)}
}

// VMDKOptions are qemu-img's options for a Workstation disk of the given
// subformat behind the given controller.
func VMDKOptions(subformat, adapter string) []string {
	a := "ide"
	if adapter == "scsi" {
		a = "lsilogic"
	}
	return []string{"subformat=" + subformat, "adapter_type=" + a, "hwversion=6"}
}

// Def declares vmware_vmx().
func Def() *engine.PostProcessorDef {
	return &engine.PostProcessorDef{
		Schema: schema.Of(Name,
			"Makes a VMware Workstation / Fusion VM folder from the build's disk (qemu(), rootfs()): a .vmx with the machine's CPUs, memory, guest OS, disk controller and network, and a growable VMDK; the folder's files join the artifact.",
			&Config{}),
		Outputs: []engine.Output{
			{Name: "vmx", Doc: "The .vmx file, relative to the workspace."},
			{Name: "vmx_directory", Doc: "The VM folder."},
		},
		New: engine.Typed("vmware_vmx", func(cfg *Config) engine.PostProcessor { return &VMXFolder{cfg: cfg} }),
	}
}

// Register adds vmware_vmx() to r.
func Register(r *engine.Registry) { r.AddPostProcessor(Def()) }

// VMXFolder is the vmware_vmx() post-processor.
type VMXFolder struct {
	cfg *Config
}

// PostProcess implements engine.PostProcessor.
func (p *VMXFolder) PostProcess(ctx context.Context, env *engine.PostEnv, in *engine.Artifact) (*engine.Artifact, error) {
	cfg := p.cfg
	disk, err := diskpost.Of(ctx, env, in, "vmware_vmx()")
	if err != nil {
		return nil, err
	}
	disk.WarnIfNoBootLoader(env.UI, "VMware Workstation")
	name := cfg.VMName
	if name == "" {
		name = env.Build
	}
	outs := env.OutputSet().Forced(cfg.Force)
	rel := output.Expand(cfg.OutputDirectory, env.Build, env.Driver)
	start := time.Now()
	var files []string
	dir, err := outs.WriteDir(rel, "output_directory", func(dir string) (err error) {
		files, err = WriteVM(ctx, env, disk, dir, name, cfg.DiskType, &cfg.Settings)
		return err
	})
	if err != nil {
		return nil, err
	}
	var shown []string
	for _, f := range files {
		shown = append(shown, outs.Show(filepath.Join(dir, f)))
	}
	vmx := outs.Show(filepath.Join(dir, name+".vmx"))
	env.UI.Say("vmware_vmx: %s made in %s (%d CPU, %d MiB, %s %s disk)", vmx, time.Since(start).Round(100*time.Millisecond), cfg.Settings.CPUs, cfg.Settings.Memory, cfg.Settings.DiskAdapterType, cfg.DiskType)
	return diskpost.Pass(in, cfg.KeepInputArtifact, "vmware", vmx, shown, map[string]any{"vmx": vmx, "vmx_directory": outs.Show(dir)}), nil
}

// WriteVM writes the machine into dir: name.vmx and its disk (name.vmdk,
// and its extents for twoGbMaxExtentSparse), checked with qemu-img. It
// returns the files' names, the .vmx first.
func WriteVM(ctx context.Context, env *engine.PostEnv, disk *diskpost.Disk, dir, name, subformat string, s *Settings) ([]string, error) {
	vmdk := name + ".vmdk"
	if err := disk.Convert(ctx, env.UI, "convert to vmdk", filepath.Join(dir, vmdk), "vmdk", VMDKOptions(subformat, s.DiskAdapterType), 0, false); err != nil {
		return nil, err
	}
	if _, err := qemuimg.Check(ctx, filepath.Join(dir, vmdk), "vmdk"); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".vmx"), []byte(VMX(s.Machine(name, vmdk))), 0o644); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := []string{name + ".vmx"}
	for _, e := range entries {
		if e.Name() != name+".vmx" {
			files = append(files, e.Name())
		}
	}
	return files, nil
}
