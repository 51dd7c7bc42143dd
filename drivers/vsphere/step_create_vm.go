package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// stepCreateVM creates vsphere_iso's empty VM (disks, network adapters),
// then attaches the ISOs to CD-ROM drives and boots disk first, CD-ROM
// second. The VM is the build's artifact: its cleanup waits for the end of
// post-processing and removes the VM if anything failed (or destroy =
// True).
type stepCreateVM struct {
	vm     *vmHandle      // output: the VM
	upload *stepUploadISO // the ISO it uploaded, if it ran
}

// Name implements step.Step.
func (s *stepCreateVM) Name() string { return "create VM" }

// MakesArtifact implements step.Artifact.
func (s *stepCreateVM) MakesArtifact() bool { return true }

// Cleanup removes the VM if the build failed, or with destroy = True.
func (s *stepCreateVM) Cleanup(ctx context.Context, failed bool) error {
	return s.vm.remove(ctx, failed)
}

// Leftovers implements step.Leaver.
func (s *stepCreateVM) Leftovers() []string { return s.vm.left() }

// Run implements step.Step.
func (s *stepCreateVM) Run(ctx context.Context) error {
	b, vm, place := s.vm.env, s.vm, s.vm.place
	spec, err := s.isoSpec(ctx)
	if err != nil {
		return err
	}
	b.say("creating %s (%s, %d CPU(s), %d MiB RAM, %d disk(s))", place.plannedPath(), spec.GuestId, spec.NumCPUs, spec.MemoryMB, len(b.iso.Storage))
	var host *object.HostSystem
	if place.host != nil {
		host = place.host
	}
	cctx, cancel := detached(ctx)
	t, err := place.folder.CreateVM(cctx, spec, place.pool, host)
	cancel()
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("creating %s: %s", place.plannedPath(), explain(err)))
	}
	vm.pending = t
	info, err := b.waitTask(ctx, t, "create VM")
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		vm.pending = nil
		return fmt.Errorf("creating %s: %s", place.plannedPath(), explain(err))
	}
	vm.adopt(info.Result.(types.ManagedObjectReference))
	return s.attachISOs(ctx)
}

// isoSpec is the new VM's configuration.
func (s *stepCreateVM) isoSpec(ctx context.Context) (types.VirtualMachineConfigSpec, error) {
	b, place := s.vm.env, s.vm.place
	c := b.iso
	spec := b.hardwareSpec()
	spec.Name = place.createName
	spec.GuestId = c.GuestOSType
	if spec.NumCPUs == 0 {
		spec.NumCPUs = 1
	}
	if spec.MemoryMB == 0 {
		spec.MemoryMB = 1024
	}
	spec.Files = &types.VirtualMachineFileInfo{VmPathName: fmt.Sprintf("[%s]", datastoreNameOf(ctx, place.ds))}
	switch c.Firmware {
	case "efi", "efi-secure":
		spec.Firmware = string(types.GuestOsDescriptorFirmwareTypeEfi)
		secure := c.Firmware == "efi-secure"
		spec.BootOptions = &types.VirtualMachineBootOptions{EfiSecureBootEnabled: &secure}
	default:
		spec.Firmware = string(types.GuestOsDescriptorFirmwareTypeBios)
	}
	spec.ExtraConfig = append(append([]types.BaseOptionValue{b.marker()}, b.guestinfo()...), spec.ExtraConfig...)

	var devices object.VirtualDeviceList
	var ctrl types.BaseVirtualDevice
	var err error
	if c.DiskControllerType == "nvme" {
		ctrl, err = devices.CreateNVMEController()
	} else {
		ctrl, err = devices.CreateSCSIController(c.DiskControllerType)
	}
	if err != nil {
		return spec, fmt.Errorf("disk_controller_type %s: %v", c.DiskControllerType, err)
	}
	devices = append(devices, ctrl)
	dsRef := place.ds.Reference()
	for _, d := range c.Storage {
		disk := devices.CreateDisk(ctrl.(types.BaseVirtualController), dsRef, "")
		disk.CapacityInKB = int64(d.DiskSize) * 1024
		thin := d.Thin
		disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo).ThinProvisioned = &thin
		devices = append(devices, disk)
	}
	for i, a := range c.NetworkAdapters {
		backing, err := place.nets[i].EthernetCardBackingInfo(ctx)
		if err != nil {
			return spec, fmt.Errorf("network_adapters[%d]: network %s: %s", i, a.Network, explain(err))
		}
		nic, err := devices.CreateEthernetCard(a.NetworkCard, backing)
		if err != nil {
			return spec, fmt.Errorf("network_adapters[%d]: %v", i, err)
		}
		if a.MACAddress != "" {
			card := nic.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
			card.AddressType = string(types.VirtualEthernetCardMacTypeManual)
			card.MacAddress = a.MACAddress
		}
		devices = append(devices, nic)
	}
	spec.DeviceChange, err = devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	if err != nil {
		return spec, err
	}
	for _, ch := range spec.DeviceChange {
		s := ch.GetVirtualDeviceConfigSpec()
		if _, ok := s.Device.(*types.VirtualDisk); ok {
			s.FileOperation = types.VirtualDeviceConfigSpecFileOperationCreate
		}
	}
	return spec, nil
}

// attachISOs adds a CD-ROM drive per ISO and sets the boot order: the
// empty disk first, so the installed system boots after the install.
func (s *stepCreateVM) attachISOs(ctx context.Context) error {
	b, vm := s.vm.env, s.vm
	isoFiles := append([]string(nil), vm.place.isoFiles...)
	if s.upload.file != "" {
		isoFiles = append(isoFiles, s.upload.file)
	}
	var o mo.VirtualMachine
	if err := vm.vm.Properties(ctx, vm.vm.Reference(), []string{"config.hardware.device"}, &o); err != nil {
		return ctxErr(ctx, fmt.Errorf("reading the devices of %s: %s", vm.path, explain(err)))
	}
	devices := object.VirtualDeviceList(o.Config.Hardware.Device)
	var add object.VirtualDeviceList
	if len(isoFiles) > 0 {
		var ctrl types.BaseVirtualController
		if b.iso.CDROMType == "sata" {
			c, err := devices.CreateSATAController()
			if err != nil {
				return err
			}
			add = append(add, c)
			devices = append(devices, c)
			ctrl = c.(types.BaseVirtualController)
		}
		for _, iso := range isoFiles {
			c := ctrl
			if c == nil {
				ide, err := devices.FindIDEController("")
				if err != nil {
					return fmt.Errorf("%s has no free IDE controller for another CD-ROM drive: attach fewer ISOs or set cdrom_type = \"sata\"", vm.path)
				}
				c = ide
			}
			cd, err := devices.CreateCdrom(c)
			if err != nil {
				return err
			}
			cd = devices.InsertIso(cd, iso)
			devices = append(devices, cd)
			add = append(add, cd)
		}
	}
	spec := types.VirtualMachineConfigSpec{}
	if len(add) > 0 {
		changes, err := add.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
		if err != nil {
			return err
		}
		spec.DeviceChange = changes
		b.say("attaching %d ISO(s) to %s", len(isoFiles), vm.path)
	}
	spec.BootOptions = &types.VirtualMachineBootOptions{BootOrder: devices.BootOrder([]string{"disk", "cdrom"})}
	return b.doTask(ctx, "attach ISOs", "attaching the ISOs to "+vm.path, func() (*object.Task, error) {
		return vm.vm.Reconfigure(ctx, spec)
	})
}
