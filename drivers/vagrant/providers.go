package vagrant

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/imgbuild/imgbuild/drivers/diskpost"
	"github.com/imgbuild/imgbuild/drivers/ova"
	"github.com/imgbuild/imgbuild/drivers/vmware"
	"github.com/imgbuild/imgbuild/engine"
)

// libvirt makes a vagrant-libvirt box: box.img (the disk as qcow2,
// converted when it is not one), the kernel and initrd when the disk
// boots them directly, metadata.json and the Vagrantfile.
func (p *Box) libvirt(ctx context.Context, env *engine.PostEnv, disk *diskpost.Disk, scratch string) (*contents, error) {
	img := disk.Path
	if disk.Format != "qcow2" {
		img = filepath.Join(scratch, "box.img")
		env.UI.Say("vagrant_box: the disk %s is %s; converting it to the qcow2 a libvirt box holds", disk.Rel, disk.Format)
		if err := disk.Convert(ctx, env.UI, "convert to qcow2", img, "qcow2", nil, 0, false); err != nil {
			return nil, err
		}
	}
	c := &contents{members: []diskpost.Member{{Name: "box.img", Path: img}}}
	if disk.Kernel != "" {
		c.members = append(c.members, diskpost.Member{Name: "vmlinuz", Path: disk.Kernel})
		if disk.Initrd != "" {
			c.members = append(c.members, diskpost.Member{Name: "initrd.img", Path: disk.Initrd})
		}
		c.what = ", boots its kernel directly"
	}
	c.members = append(c.members,
		metadata(Metadata{Provider: "libvirt", Format: "qcow2", VirtualSize: (disk.Info.VirtualSize + 1<<30 - 1) >> 30}),
		diskpost.Member{Name: "Vagrantfile", Data: []byte(Vagrantfile(disk.Build, p.cfg.Memory, p.cfg.CPUs, disk.Kernel != "", disk.Initrd != "", disk.Append))})
	return c, nil
}

// virtualbox makes a VirtualBox box: box.ovf, box-disk001.vmdk
// (streamOptimized, behind a SATA controller, as VirtualBox exports),
// metadata.json and a Vagrantfile with the base MAC.
func (p *Box) virtualbox(ctx context.Context, env *engine.PostEnv, disk *diskpost.Disk, scratch string) (*contents, error) {
	disk.WarnIfNoBootLoader(env.UI, "VirtualBox")
	vmdk := filepath.Join(scratch, "box-disk001.vmdk")
	size, err := ova.MakeVMDK(ctx, env, disk, vmdk, "sata")
	if err != nil {
		return nil, err
	}
	mac := p.cfg.BaseMAC
	if mac == "" {
		mac = DeriveMAC(env.Build)
	}
	mac, _ = parseMAC(mac)
	guest := p.cfg.GuestOSType
	if guest == "" {
		guest = "debian12_64Guest"
	}
	ovf, err := ova.Descriptor(ova.Machine{
		Name: env.Build, CPUs: p.cfg.CPUs, MemoryMiB: p.cfg.Memory,
		DiskFile: "box-disk001.vmdk", DiskFileSize: size, DiskCapacity: disk.Info.VirtualSize, DiskController: "sata",
		Network: "NAT", NetworkAdapter: "e1000", MAC: mac, GuestOS: guest, SystemType: "virtualbox-2.2",
	})
	if err != nil {
		return nil, err
	}
	vf := fmt.Sprintf(`# Made by imgbuild's vagrant_box() for the build %s.
Vagrant.configure("2") do |config|
  config.vm.base_mac = %s
  config.vm.provider :virtualbox do |vb|
    vb.memory = %d
    vb.cpus = %d
  end
end
`, rubyString(disk.Build), rubyString(mac), p.cfg.Memory, p.cfg.CPUs)
	return &contents{members: []diskpost.Member{
		{Name: "box.ovf", Data: ovf},
		{Name: "box-disk001.vmdk", Path: vmdk},
		metadata(Metadata{Provider: "virtualbox"}),
		{Name: "Vagrantfile", Data: []byte(vf)},
	}}, nil
}

// vmware makes a vagrant-vmware-desktop box: <build>.vmx, its
// monolithicSparse VMDK, metadata.json and a Vagrantfile.
func (p *Box) vmware(ctx context.Context, env *engine.PostEnv, disk *diskpost.Disk, scratch string) (*contents, error) {
	disk.WarnIfNoBootLoader(env.UI, "VMware Workstation and Fusion")
	guest := p.cfg.GuestOSType
	if guest == "" {
		guest = "debian12-64"
	}
	s := &vmware.Settings{CPUs: p.cfg.CPUs, Memory: p.cfg.Memory, GuestOSType: guest, Version: 13, Firmware: "bios",
		DiskAdapterType: "scsi", Network: "nat", NetworkAdapterType: "e1000"}
	files, err := vmware.WriteVM(ctx, env, disk, scratch, env.Build, "monolithicSparse", s)
	if err != nil {
		return nil, err
	}
	c := &contents{}
	for _, f := range files {
		c.members = append(c.members, diskpost.Member{Name: f, Path: filepath.Join(scratch, f)})
	}
	vf := fmt.Sprintf(`# Made by imgbuild's vagrant_box() for the build %s.
Vagrant.configure("2") do |config|
  config.vm.provider :vmware_desktop do |v|
    v.vmx["memsize"] = %s
    v.vmx["numvcpus"] = %s
  end
end
`, rubyString(disk.Build), rubyString(strconv.Itoa(p.cfg.Memory)), rubyString(strconv.Itoa(p.cfg.CPUs)))
	c.members = append(c.members, metadata(Metadata{Provider: "vmware_desktop"}), diskpost.Member{Name: "Vagrantfile", Data: []byte(vf)})
	return c, nil
}

// DeriveMAC is the base MAC of a build's VirtualBox box: VirtualBox's
// prefix 08:00:27 and three bytes of the SHA-256 of the build's name, so
// that every run of a build gives its box the same address.
func DeriveMAC(build string) string {
	sum := sha256.Sum256([]byte("imgbuild vagrant_box " + build))
	return "080027" + strings.ToUpper(hex.EncodeToString(sum[:3]))
}

// parseMAC reads a MAC address as 12 hex digits, with or without ':' or
// '-' between bytes, and returns it as Vagrant's base_mac wants it: 12
// upper-case hex digits.
func parseMAC(s string) (string, error) {
	t := strings.NewReplacer(":", "", "-", "").Replace(s)
	if len(t) != 12 {
		return "", fmt.Errorf("%q is not a MAC address (12 hex digits, such as 080027A1B2C3)", s)
	}
	b, err := hex.DecodeString(t)
	if err != nil {
		return "", fmt.Errorf("%q is not a MAC address (12 hex digits, such as 080027A1B2C3)", s)
	}
	if b[0]&1 != 0 {
		return "", fmt.Errorf("%q is a multicast address: a machine's adapter needs a unicast one (an even first byte)", s)
	}
	return strings.ToUpper(t), nil
}

// checkGuestOS says why id is not a guest OS type of the provider's.
func checkGuestOS(provider, id string) error {
	switch provider {
	case "virtualbox":
		return ova.CheckGuestOS(id)
	case "vmware_desktop":
		s := vmware.Settings{CPUs: 1, Memory: 64, GuestOSType: id, Version: 13}
		if err := s.Validate(nil); err != nil {
			return fmt.Errorf("%q is not a .vmx guestOS value (such as \"debian12-64\")", id)
		}
		return nil
	}
	return fmt.Errorf("is for provider = \"virtualbox\" or \"vmware_desktop\" (a libvirt box says nothing of its guest)")
}
