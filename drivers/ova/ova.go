// Package ova is the ova() post-processor: it packs the disk of a qemu()
// or rootfs() build into an OVA, the single-file OVF package VMware
// vSphere, Workstation and Fusion and VirtualBox import. The package is
// a USTAR archive holding, in the order the OVF specification asks, the
// OVF 1.0 descriptor (written with govmomi's ovf types), a manifest of
// SHA-256 (or SHA-1) sums, and the disk as a streamOptimized VMDK made by
// qemu-img (split in chunks when it is larger than a USTAR member can be).
//
// Its descriptor is shared: vagrant_box(provider = "virtualbox") writes
// its box.ovf with Descriptor too. It knows nothing of Starlark.
package ova

import (
	"archive/tar"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/drivers/diskpost"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/vmware/govmomi/vim25/types"
)

// Name is the post-processor's name in descriptions.
const Name = "ova"

// Config is ova()'s configuration.
type Config struct {
	Output            string `kw:"output" default:"output/{build}/{build}.ova" path:"output" doc:"The OVA file, relative to the workspace ({build} is the build's name)."`
	VMName            string `kw:"vm_name" doc:"The machine's name in the appliance (and the descriptor's and disk's file names); \"\" means the build's name."`
	CPUs              int    `kw:"cpus" default:"1" doc:"Virtual CPUs of the machine."`
	Memory            int    `kw:"memory" default:"1024" doc:"Memory of the machine, in MiB."`
	Network           string `kw:"network" default:"VM Network" doc:"The network the machine's adapter connects to (mapped on import); \"\" gives it no network adapter."`
	NetworkAdapter    string `kw:"network_adapter" default:"e1000" enum:"e1000|e1000e|vmxnet3" doc:"The network adapter: e1000 (every platform), e1000e, or vmxnet3 (VMware only)."`
	DiskAdapterType   string `kw:"disk_adapter_type" default:"scsi" enum:"scsi|sata|ide" doc:"The disk's controller: scsi (LSI Logic), sata (AHCI) or ide."`
	GuestOSType       string `kw:"guest_os_type" default:"debian12_64Guest" doc:"VMware's guest id (debian12_64Guest, ubuntu64Guest, otherLinux64Guest, ...); the OVF operating system id comes from it."`
	VMVersion         int    `kw:"vm_version" default:"13" doc:"The virtual hardware version (vmx-13 runs on ESXi 6.5, Workstation 14 and later)."`
	Firmware          string `kw:"firmware" default:"bios" enum:"bios|efi" doc:"The firmware the machine boots with."`
	Product           string `kw:"product" doc:"Product name in the appliance's product information."`
	Vendor            string `kw:"vendor" doc:"Vendor in the product information."`
	ProductVersion    string `kw:"product_version" doc:"Version in the product information."`
	ProductURL        string `kw:"product_url" doc:"The product's URL."`
	VendorURL         string `kw:"vendor_url" doc:"The vendor's URL."`
	Notes             string `kw:"notes" doc:"The machine's description (its annotation)."`
	Manifest          string `kw:"manifest" default:"sha256" enum:"sha256|sha1|none" doc:"The manifest's digests: sha256, sha1 (for old importers), or none (no manifest)."`
	KeepInputArtifact bool   `kw:"keep_input_artifact" default:"True" doc:"Keep the input's files in the artifact passed on (the OVA joins them); False passes on the OVA alone."`
	Force             bool   `kw:"force" default:"False" doc:"Also replace an OVA imgbuild made for another build (one of this build's earlier runs is replaced anyway; a file imgbuild did not make never is)."`
}

var vmName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$`)

// Validate implements schema.Validator.
func (c *Config) Validate(deferred schema.Deferred) error {
	if c.VMName != "" && !deferred.Has("vm_name") && !vmName.MatchString(c.VMName) {
		return schema.Errorf("vm_name", "%q is not a machine name: letters, digits, '.', '_' and '-', at most 80", c.VMName)
	}
	if c.CPUs < 1 || c.CPUs > 128 {
		return schema.Errorf("cpus", "%d is not between 1 and 128", c.CPUs)
	}
	if c.Memory < 64 {
		return schema.Errorf("memory", "%d MiB is too little to boot", c.Memory)
	}
	if c.VMVersion < 4 || c.VMVersion > 30 {
		return schema.Errorf("vm_version", "%d is not a virtual hardware version (4 to 21 today; 13 is a safe choice)", c.VMVersion)
	}
	if !deferred.Has("guest_os_type") {
		if err := CheckGuestOS(c.GuestOSType); err != nil {
			return schema.Errorf("guest_os_type", "%v", err)
		}
	}
	if c.NetworkAdapter == "vmxnet3" && c.Network == "" {
		return schema.Errorf("network_adapter", "is set but network is \"\": there is no adapter")
	}
	return nil
}

// CheckGuestOS says why id is not a VMware guest id.
func CheckGuestOS(id string) error {
	if GuestOSKnown(id) {
		return nil
	}
	var ids []string
	for _, v := range types.VirtualMachineGuestOsIdentifier("").Values() {
		ids = append(ids, string(v))
	}
	msg := fmt.Sprintf("%q is not a VMware guest id", id)
	if near := schema.Nearest(id, ids); near != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", near)
	}
	return fmt.Errorf("%s; common ones: debian12_64Guest, ubuntu64Guest, rhel9_64Guest, otherLinux64Guest", msg)
}

// Def declares ova().
func Def() *engine.PostProcessorDef {
	return &engine.PostProcessorDef{
		Schema: schema.Of(Name,
			"Packs the build's disk (qemu(), rootfs()) into an OVA that vSphere, VMware Workstation and Fusion, and VirtualBox import: an OVF 1.0 descriptor with the machine's CPUs, memory, network, guest OS and product information, a SHA-256 manifest, and a streamOptimized VMDK. The OVA joins the artifact.",
			&Config{}),
		Outputs: []engine.Output{
			{Name: "ova", Doc: "The OVA file, relative to the workspace."},
			{Name: "ova_checksum", Doc: "\"sha256:<hex>\" of the OVA file."},
		},
		New: engine.Typed("ova", func(cfg *Config) engine.PostProcessor { return &OVA{cfg: cfg} }),
	}
}

// Register adds ova() to r.
func Register(r *engine.Registry) { r.AddPostProcessor(Def()) }

// OVA is the ova() post-processor.
type OVA struct {
	cfg *Config
}

// maxMember is the largest file a USTAR member holds (its size field is
// 11 octal digits); a larger disk is split in chunks of chunkSize.
var maxMember, chunkSize int64 = 1<<33 - 1, 4 << 30

// VMDKOptions are qemu-img's options for the streamOptimized VMDK of a
// disk behind a controller of the given kind (scsi, sata, ide).
func VMDKOptions(controller string) []string {
	adapter := "ide" // VMware's VMDK header names SATA disks ide too
	if controller == "scsi" {
		adapter = "lsilogic"
	}
	return []string{"subformat=streamOptimized", "adapter_type=" + adapter}
}

// MakeVMDK converts the disk to a streamOptimized VMDK at path, checks it
// with qemu-img, and returns its size.
func MakeVMDK(ctx context.Context, env *engine.PostEnv, disk *diskpost.Disk, path, controller string) (int64, error) {
	if err := disk.Convert(ctx, env.UI, "convert to vmdk", path, "vmdk", VMDKOptions(controller), 0, false); err != nil {
		return 0, err
	}
	if _, err := qemuimg.Check(ctx, path, "vmdk"); err != nil {
		return 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// PostProcess implements engine.PostProcessor.
func (p *OVA) PostProcess(ctx context.Context, env *engine.PostEnv, in *engine.Artifact) (*engine.Artifact, error) {
	cfg := p.cfg
	disk, err := diskpost.Of(ctx, env, in, "ova()")
	if err != nil {
		return nil, err
	}
	disk.WarnIfNoBootLoader(env.UI, "an OVA's platform (vSphere, Workstation, VirtualBox)")
	name := cfg.VMName
	if name == "" {
		name = env.Build
	}
	scratch, err := scratchDir(env)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	start := time.Now()
	vmdkName := name + "-disk1.vmdk"
	vmdk := filepath.Join(scratch, vmdkName)
	size, err := MakeVMDK(ctx, env, disk, vmdk, cfg.DiskAdapterType)
	if err != nil {
		return nil, err
	}
	m := Machine{
		Name: name, CPUs: cfg.CPUs, MemoryMiB: cfg.Memory,
		DiskFile: vmdkName, DiskFileSize: size, DiskCapacity: disk.Info.VirtualSize, DiskController: cfg.DiskAdapterType,
		Network: cfg.Network, NetworkAdapter: cfg.NetworkAdapter, GuestOS: cfg.GuestOSType,
		SystemType: fmt.Sprintf("vmx-%02d", cfg.VMVersion), Firmware: cfg.Firmware, Annotation: cfg.Notes,
	}
	if cfg.Product != "" || cfg.Vendor != "" || cfg.ProductVersion != "" || cfg.ProductURL != "" || cfg.VendorURL != "" {
		m.Product = &Product{Product: cfg.Product, Vendor: cfg.Vendor, Version: cfg.ProductVersion, ProductURL: cfg.ProductURL, VendorURL: cfg.VendorURL}
	}
	disks := []diskpost.Member{{Name: vmdkName, Path: vmdk}}
	if size > maxMember {
		m.ChunkSize = chunkSize
		disks = Chunks(vmdkName, vmdk, size, chunkSize)
	}
	descriptor, err := Descriptor(m)
	if err != nil {
		return nil, err
	}
	members := []diskpost.Member{{Name: name + ".ovf", Data: descriptor}}
	if cfg.Manifest != "none" {
		mf, err := ManifestOf(ctx, cfg.Manifest, append([]diskpost.Member{members[0]}, disks...))
		if err != nil {
			return nil, err
		}
		members = append(members, diskpost.Member{Name: name + ".mf", Data: mf})
	}
	members = append(members, disks...)

	outs := env.OutputSet().Forced(cfg.Force)
	rel := output.Expand(cfg.Output, env.Build, env.Driver)
	var sum string
	shown, fileSize, err := diskpost.WriteOutput(outs, rel, "output", func(f *output.File) error {
		var err error
		sum, err = diskpost.WriteArchive(ctx, f.File, members, diskpost.ArchiveOptions{
			Format:   tar.FormatUSTAR,
			Progress: func(done, total int64) { env.UI.Progress("ova", done, total, "bytes") },
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	env.UI.Say("ova: %s made in %s (%s; %d CPU, %d MiB, %s disk of %s)", shown, time.Since(start).Round(100*time.Millisecond),
		qemuimg.HumanSize(fileSize), cfg.CPUs, cfg.Memory, cfg.DiskAdapterType, qemuimg.HumanSize(disk.Info.VirtualSize))
	return diskpost.Pass(in, cfg.KeepInputArtifact, "ovf", shown, []string{shown}, map[string]any{
		"ova": shown, "ova_checksum": "sha256:" + sum,
	}), nil
}

// scratchDir makes a directory for the intermediate files in the build's
// scratch directory.
func scratchDir(env *engine.PostEnv) (string, error) {
	return os.MkdirTemp(env.WorkDir, "ova-")
}

// Chunks splits the file at path (of size bytes) into OVF chunks of
// chunk bytes: name.000000000, name.000000001, ...
func Chunks(name, path string, size, chunk int64) []diskpost.Member {
	var out []diskpost.Member
	for i, off := 0, int64(0); off < size; i, off = i+1, off+chunk {
		out = append(out, diskpost.Member{Name: fmt.Sprintf("%s.%09d", name, i), Path: path, Offset: off, Length: min(chunk, size-off)})
	}
	return out
}

// ManifestOf is an OVF manifest of members: "SHA256(name)= hex" lines.
func ManifestOf(ctx context.Context, algorithm string, members []diskpost.Member) ([]byte, error) {
	newHash, label := sha256.New, "SHA256"
	if algorithm == "sha1" {
		newHash, label = sha1.New, "SHA1"
	}
	var b strings.Builder
	for _, m := range members {
		sum, err := digest(ctx, newHash(), m)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "%s(%s)= %s\n", label, m.Name, sum)
	}
	return []byte(b.String()), nil
}

func digest(ctx context.Context, h hash.Hash, m diskpost.Member) (string, error) {
	if m.Path == "" {
		h.Write(m.Data)
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	f, err := os.Open(m.Path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var r io.Reader = f
	if m.Length > 0 {
		r = io.NewSectionReader(f, m.Offset, m.Length)
	}
	if _, err := io.Copy(h, diskpost.ContextReader(ctx, r)); err != nil {
		return "", fmt.Errorf("reading %s: %w", m.Path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
