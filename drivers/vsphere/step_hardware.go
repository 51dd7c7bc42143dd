package vsphere

import (
	"context"
	"fmt"
	"sort"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// needsHardware reports whether the clone's hardware differs from the
// template's by configuration.
func (b *buildEnv) needsHardware() bool {
	h := b.hw
	return h.CPUs > 0 || h.CPUCores > 0 || h.RAM > 0 || h.Notes != "" || len(h.ConfigurationParameters) > 0 ||
		b.clone.DiskSize > 0 || b.clone.Network != ""
}

// stepHardware reconfigures the clone: CPUs, memory, first disk's size,
// first network adapter's network, notes and advanced settings. Nothing to
// undo: the clone is removed as a whole when the build fails.
type stepHardware struct {
	env   *buildEnv
	vm    *vmHandle
	place *stepPlacement // the network
}

// Name implements step.Step.
func (s *stepHardware) Name() string { return "configure hardware" }

// Run implements step.Step.
func (s *stepHardware) Run(ctx context.Context) error {
	b := s.env
	spec := b.hardwareSpec()
	var o mo.VirtualMachine
	if b.clone.DiskSize > 0 || s.place.network != nil {
		if err := s.vm.vm.Properties(ctx, s.vm.vm.Reference(), []string{"config.hardware.device"}, &o); err != nil {
			return fmt.Errorf("reading the devices of %s: %s", s.vm.path, explain(err))
		}
		devices := object.VirtualDeviceList(o.Config.Hardware.Device)
		if b.clone.DiskSize > 0 {
			ch, err := growDisk(devices, b.clone.DiskSize)
			if err != nil {
				return fmt.Errorf("%s: %w", s.vm.path, err)
			}
			spec.DeviceChange = append(spec.DeviceChange, ch)
		}
		if s.place.network != nil {
			ch, err := s.connectNIC(ctx, devices)
			if err != nil {
				return err
			}
			spec.DeviceChange = append(spec.DeviceChange, ch)
		}
	}
	b.say("configuring %s: %s", s.vm.path, describeSpec(spec, b.clone.DiskSize, b.clone.Network))
	return b.doTask(ctx, "configure hardware", "reconfiguring "+s.vm.path, func() (*object.Task, error) {
		return s.vm.vm.Reconfigure(ctx, spec)
	})
}

// hardwareSpec holds the settings both builders share.
func (b *buildEnv) hardwareSpec() types.VirtualMachineConfigSpec {
	h := b.hw
	spec := types.VirtualMachineConfigSpec{Annotation: h.Notes}
	if h.CPUs > 0 {
		spec.NumCPUs = int32(h.CPUs)
	}
	if h.CPUCores > 0 {
		cores := int32(h.CPUCores)
		spec.NumCoresPerSocket = &cores
	}
	if h.RAM > 0 {
		spec.MemoryMB = int64(h.RAM)
	}
	keys := make([]string, 0, len(h.ConfigurationParameters))
	for k := range h.ConfigurationParameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: k, Value: h.ConfigurationParameters[k]})
	}
	return spec
}

// growDisk returns the change growing the first disk to mib MiB.
func growDisk(devices object.VirtualDeviceList, mib int) (types.BaseVirtualDeviceConfigSpec, error) {
	disks := devices.SelectByType((*types.VirtualDisk)(nil))
	if len(disks) == 0 {
		return nil, fmt.Errorf("disk_size is set but the VM has no disk to grow")
	}
	d := disks[0].(*types.VirtualDisk)
	have := d.CapacityInKB / 1024
	if d.CapacityInBytes > 0 {
		have = d.CapacityInBytes / (1024 * 1024)
	}
	want := int64(mib)
	if want < have {
		return nil, fmt.Errorf("disk_size %d MiB is smaller than the template's disk (%d MiB): disks can only grow", mib, have)
	}
	d.CapacityInKB = want * 1024
	d.CapacityInBytes = want * 1024 * 1024
	return &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: d}, nil
}

// connectNIC returns the change connecting the first network adapter to
// the build's network.
func (s *stepHardware) connectNIC(ctx context.Context, devices object.VirtualDeviceList) (types.BaseVirtualDeviceConfigSpec, error) {
	b := s.env
	nics := devices.SelectByType((*types.VirtualEthernetCard)(nil))
	if len(nics) == 0 {
		return nil, fmt.Errorf("network is set but %s has no network adapter to connect", s.vm.path)
	}
	backing, err := s.place.network.EthernetCardBackingInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("network %s: %s", b.clone.Network, explain(err))
	}
	nic := nics[0]
	nic.GetVirtualDevice().Backing = backing
	return &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: nic}, nil
}

// describeSpec says what a reconfiguration changes, for the log.
func describeSpec(spec types.VirtualMachineConfigSpec, diskMiB int, network string) string {
	var parts []string
	if spec.NumCPUs > 0 {
		parts = append(parts, fmt.Sprintf("%d CPUs", spec.NumCPUs))
	}
	if spec.NumCoresPerSocket != nil {
		parts = append(parts, fmt.Sprintf("%d cores per socket", *spec.NumCoresPerSocket))
	}
	if spec.MemoryMB > 0 {
		parts = append(parts, fmt.Sprintf("%d MiB RAM", spec.MemoryMB))
	}
	if diskMiB > 0 {
		parts = append(parts, fmt.Sprintf("disk %d MiB", diskMiB))
	}
	if network != "" {
		parts = append(parts, "network "+network)
	}
	if spec.Annotation != "" {
		parts = append(parts, "notes")
	}
	if n := len(spec.ExtraConfig); n > 0 {
		parts = append(parts, fmt.Sprintf("%d configuration parameter(s)", n))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	out := parts[0]
	for _, p := range parts[1:] {
		out += ", " + p
	}
	return out
}
