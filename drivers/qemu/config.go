// Package qemu is the qemu() builder: it boots a disk image on this machine
// with QEMU, provisions it over SSH, shuts it down cleanly and converts what
// it wrote into a new image (qcow2, optionally compressed, raw or vmdk).
//
// The input disk is never written: the machine boots a copy-on-write
// overlay of it, in the build's scratch directory, which is flattened into
// the output at the end. The machine is reached through QEMU's user
// network, its SSH port forwarded from a free port on 127.0.0.1; the build
// makes an SSH key of its own and gives the machine its public half without
// the user's help, through an SMBIOS type 11 systemd credential
// (io.systemd.credential:ssh.authorized_keys.root, as mkosi does) and, for
// images with cloud-init, a NoCloud seed served to the guest over HTTP.
// The host key is learned on first contact through that forwarded port,
// which only this build's QEMU process holds.
//
// Acceleration is KVM only when it can work: /dev/kvm is usable and the CPU
// flags in /proc/cpuinfo show vmx or svm; otherwise TCG, which is slower
// but runs anywhere. The serial console goes to a file whose last lines are
// quoted when the machine does not come up.
//
// Like every driver it knows nothing of Starlark: it gets a decoded Config
// in an engine.Job.
package qemu

import (
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// Name is the builder's name in descriptions.
const Name = "qemu"

// Config is qemu()'s configuration.
type Config struct {
	Disk            string `kw:"disk" path:"file" doc:"The disk image to boot: a path, or another build's output (base.disk). It is never written to. Without it, iso_url installs onto a blank disk."`
	DiskSize        string `kw:"disk_size" doc:"Grow the disk to this size (\"20G\"); \"\" keeps the image's size. With iso_url, the size of the blank disk installed onto (\"\" is 40G, as Packer's 40960M)."`
	Kernel          string `kw:"kernel" path:"file" doc:"A kernel to boot directly (base.kernel); \"\" boots the disk through the firmware."`
	Initrd          string `kw:"initrd" path:"file" doc:"The initrd to boot kernel with (base.initrd)."`
	Append          string `kw:"append" doc:"The kernel command line (base.append); \"\" means root=/dev/vda ro console=ttyS0,115200n8."`
	Firmware        string `kw:"firmware" default:"bios" enum:"bios|uefi|efi" doc:"Firmware for booting without kernel: bios (SeaBIOS) or uefi (also efi: OVMF, from Debian's ovmf package, with a variable store of the build's own)."`
	Install         `kw:",squash"`
	Memory          int           `kw:"memory" default:"1024" doc:"Memory of the machine, in MiB."`
	CPUs            int           `kw:"cpus" default:"1" doc:"Virtual CPUs of the machine."`
	CPUModel        string        `kw:"cpu_model" doc:"QEMU's -cpu model; \"\" is host under KVM and max under TCG."`
	Accelerator     string        `kw:"accelerator" default:"auto" enum:"auto|kvm|tcg" doc:"auto uses KVM when it can work here (usable /dev/kvm and vmx or svm in the CPU flags), else TCG (emulation: slower, works anywhere)."`
	Machine         string        `kw:"machine" default:"q35" doc:"QEMU machine type (Packer's machine_type)."`
	DiskInterface   string        `kw:"disk_interface" default:"virtio" enum:"virtio|virtio-scsi|ide|sata" doc:"How the disk is attached: virtio (virtio-blk, /dev/vda), virtio-scsi, ide or sata (/dev/sda)."`
	DiskCache       string        `kw:"disk_cache" default:"writeback" enum:"writeback|writethrough|none|unsafe|directsync" doc:"QEMU's cache mode for the disk."`
	DiskDiscard     string        `kw:"disk_discard" default:"unmap" enum:"unmap|ignore" doc:"Whether the guest's discards (TRIM) free space in the disk file."`
	NetDevice       string        `kw:"net_device" default:"virtio-net" enum:"virtio-net|e1000|e1000e|rtl8139|vmxnet3|i82559er" doc:"The machine's network card (virtio-net is QEMU's virtio-net-pci)."`
	Headless        bool          `kw:"headless" default:"True" doc:"No window; False shows the machine's screen in a QEMU window (-display gtk), which needs a desktop."`
	CloudInit       bool          `kw:"cloud_init" default:"False" doc:"The image runs cloud-init: also give it a NoCloud seed (named by SMBIOS, served over HTTP to the guest) with the build's SSH key."`
	BootWait        time.Duration `kw:"boot_wait" default:"0s" doc:"Wait this long after starting the machine before typing boot_command (without one, before trying SSH)."`
	ShutdownCommand string        `kw:"shutdown_command" default:"poweroff" doc:"Command run over SSH to power the machine off once provisioned; \"\" stops it at once (after sync)."`
	ShutdownTimeout time.Duration `kw:"shutdown_timeout" default:"2m" doc:"How long to wait for the machine to power off before stopping it by force (with a warning)."`
	Format          string        `kw:"format" default:"qcow2" enum:"qcow2|raw|vmdk" doc:"Format of the output disk."`
	Compress        bool          `kw:"compress" default:"False" doc:"Compress the qcow2 output (smaller, slower to write)."`
	VMName          string        `kw:"vm_name" doc:"File name of the output disk; \"\" is <build>.<format>."`
	OutputDirectory string        `kw:"output_directory" default:"output/{build}" path:"output" doc:"Where the outputs go, relative to the workspace ({build} is the build's name). A previous run's outputs are replaced; a directory holding files imgbuild did not make is refused."`
	Force           bool          `kw:"force" default:"False" doc:"Also replace an output directory imgbuild made for another build (what imgbuild did not make is never replaced)."`
	QemuArgs        []string      `kw:"qemu_args" doc:"Extra arguments for qemu-system-x86_64, added last."`
	SSH             ssh.Options   `kw:",squash"`
}

// Install is what installing from an ISO takes, as Packer's qemu builder
// names it: the ISO, the keys typed at its boot prompt, the files served
// to the installer over HTTP and the files of a second CD.
type Install struct {
	ISOURL          string            `kw:"iso_url" path:"file" pathurl:"http|https" doc:"The installer ISO to boot from a CD: a file in the workspace, or an http(s) URL downloaded into a cache every run shares ($IMGBUILD_CACHE_DIR, else ~/.cache/imgbuild), resumed when cut off."`
	ISOURLs         []string          `kw:"iso_urls" path:"file" pathurl:"http|https" doc:"ISOs tried in order, the first that downloads and matches iso_checksum wins (instead of iso_url)."`
	ISOChecksum     string            `kw:"iso_checksum" doc:"Checksum of the ISO, checked before it boots: \"sha256:<hex>\" (sha512:, sha1:, md5:), \"file:<path or URL>\" of a SHA256SUMS-style list holding the ISO's name, or \"none\" (a warning)."`
	BootCommand     []string          `kw:"boot_command" doc:"Keys typed at the installer's boot prompt through QEMU's QMP send-key: text, <enter>, <wait5>, <leftCtrlOn>..., and {http_ip} (10.0.2.2), {http_port}, {http_url}, {name} (or {vm_name})."`
	BootPrompt      string            `kw:"boot_prompt" doc:"Text the serial console shows once the boot loader waits for boot_command (\"grub>\"): typing starts when it appears (after boot_wait), instead of after a guessed boot_wait alone."`
	BootPromptWait  time.Duration     `kw:"boot_prompt_timeout" default:"5m" doc:"How long to wait for boot_prompt."`
	BootKeyInterval time.Duration     `kw:"boot_key_interval" default:"100ms" doc:"Pause between two keys of boot_command (Packer's default for QEMU): a boot loader reading slower than keys come loses some from QEMU's small keyboard queue."`
	HTTPDirectory   string            `kw:"http_directory" path:"dir" doc:"Directory served over HTTP to the installer (preseed, kickstart), at {http_url}/; the guest reaches it at 10.0.2.2 through QEMU's user network."`
	HTTPContent     map[string]string `kw:"http_content" doc:"Files served over HTTP: path → content (\"/preseed.cfg\": ...). The build's SSH public key is served at /.imgbuild/authorized_keys."`
	HTTPPortMin     int               `kw:"http_port_min" default:"8000" doc:"Lowest port the HTTP server may listen on (on 127.0.0.1)."`
	HTTPPortMax     int               `kw:"http_port_max" default:"9000" doc:"Highest port the HTTP server may listen on."`
	CDFiles         []string          `kw:"cd_files" path:"any" doc:"Files and directories put on a second CD (ISO9660 with Rock Ridge and Joliet, made with xorriso): a directory's content goes at the top. For cloud-init NoCloud seeds and kickstarts. The build's SSH public key is on it as imgbuild/authorized_keys."`
	CDContent       map[string]string `kw:"cd_content" doc:"Files put on the second CD: path → content (\"user-data\": ...)."`
	CDLabel         string            `kw:"cd_label" doc:"Volume label of the second CD (cidata for a NoCloud seed); \"\" is imgbuild."`
}

// Validate implements schema.Validator.
func (c *Config) Validate(deferred schema.Deferred) error {
	if c.SSH.Host != "" && !deferred.Has("ssh_host") {
		return schema.Errorf("ssh_host", "cannot be set: qemu() reaches its machine through a port of 127.0.0.1 forwarded to the machine's ssh_port")
	}
	if err := c.validateInstall(deferred); err != nil {
		return err
	}
	if c.DiskSize != "" && !deferred.Has("disk_size") {
		if _, err := qemuimg.ParseSize(c.DiskSize); err != nil {
			return schema.Errorf("disk_size", "%v", err)
		}
	}
	kernel := c.Kernel != "" || deferred.Has("kernel")
	if (c.Initrd != "" || deferred.Has("initrd")) && !kernel {
		return schema.Errorf("initrd", "is set but kernel is not: an initrd is booted with a kernel (kernel = base.kernel)")
	}
	if (c.Append != "" || deferred.Has("append")) && !kernel {
		return schema.Errorf("append", "is set but kernel is not: a command line is given to a kernel booted directly (kernel = base.kernel)")
	}
	if c.Memory < 64 {
		return schema.Errorf("memory", "%d MiB is too little to boot (at least 64; Debian wants 512 or more)", c.Memory)
	}
	if c.CPUs < 1 || c.CPUs > 64 {
		return schema.Errorf("cpus", "%d is not between 1 and 64", c.CPUs)
	}
	if c.ShutdownTimeout <= 0 {
		return schema.Errorf("shutdown_timeout", "must be more than 0")
	}
	if c.Compress && c.Format != "qcow2" {
		return schema.Errorf("compress", "compresses qcow2 output, but format is %q", c.Format)
	}
	if c.Machine == "" || strings.ContainsAny(c.Machine, " ,=") {
		return schema.Errorf("machine", "%q is not a QEMU machine type (such as \"q35\" or \"pc\")", c.Machine)
	}
	return c.SSH.Validate(deferred, ssh.Require{})
}

// Def declares the qemu() builder.
func Def() *engine.BuilderDef {
	return &engine.BuilderDef{
		Schema: schema.Of(Name,
			"Boots a disk image, or installs from an ISO onto a blank disk (iso_url, boot_command, http_directory, cd_files), with QEMU on this machine (KVM when it works here, else TCG), provisions it over SSH with a per-build key it installs itself, shuts it down cleanly and converts the result into a new image (qcow2, raw or vmdk). The input disk is never written.",
			&Config{}),
		Outputs: []engine.Output{
			{Name: "disk", Doc: "The output disk image, relative to the workspace when inside it."},
			{Name: "format", Doc: "Its format: qcow2, raw or vmdk."},
			{Name: "kernel", Doc: "The kernel the image boots directly (read back from the machine's /vmlinuz after provisioning); \"\" for firmware boot."},
			{Name: "initrd", Doc: "The initrd matching kernel; \"\" when there is none."},
			{Name: "append", Doc: "The kernel command line the machine was booted with."},
			{Name: "checksum", Doc: "\"sha256:<hex>\" of the output disk."},
			{Name: "directory", Doc: "The output directory."},
		},
		Build:      Build,
		CheckTests: func(any) error { return nil },
	}
}

// Register adds qemu() to r.
func Register(r *engine.Registry) { r.AddBuilder(Def()) }

// defaultAppend is the kernel command line when append is not set.
const defaultAppend = "root=/dev/vda ro console=ttyS0,115200n8"

// installing reports whether the build installs from an ISO.
func (c *Config) installing() bool { return c.ISOURL != "" || len(c.ISOURLs) > 0 }

// uefi reports whether the machine boots through OVMF.
func (c *Config) uefi() bool { return c.Firmware == "uefi" || c.Firmware == "efi" }

// cmdline is the kernel command line the machine boots with.
func (c *Config) cmdline() string {
	if c.Append != "" {
		return c.Append
	}
	return defaultAppend
}
