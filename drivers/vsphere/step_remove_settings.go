package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// stepRemoveSettings takes out what only the build needed before the VM is
// captured: the guestinfo settings that carried the build's SSH key and,
// for vsphere_iso with remove_cdrom, the CD-ROM drives.
type stepRemoveSettings struct {
	env *buildEnv
	vm  *vmHandle
}

// Name implements step.Step.
func (s *stepRemoveSettings) Name() string { return "remove build settings" }

// Run implements step.Step.
func (s *stepRemoveSettings) Run(ctx context.Context) error {
	b := s.env
	spec := types.VirtualMachineConfigSpec{}
	for _, k := range b.guestinfoKeys() {
		// An empty value removes the setting.
		spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: k, Value: ""})
	}
	what := "the build's guestinfo"
	if b.iso != nil && b.iso.RemoveCDROM {
		var o mo.VirtualMachine
		if err := s.vm.vm.Properties(ctx, s.vm.vm.Reference(), []string{"config.hardware.device"}, &o); err != nil {
			return ctxErr(ctx, fmt.Errorf("reading the devices of %s: %s", s.vm.path, explain(err)))
		}
		cdroms := object.VirtualDeviceList(o.Config.Hardware.Device).SelectByType((*types.VirtualCdrom)(nil))
		for _, d := range cdroms {
			spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationRemove, Device: d})
		}
		if len(cdroms) > 0 {
			what += fmt.Sprintf(" and %d CD-ROM drive(s)", len(cdroms))
		}
	}
	b.say("removing %s from %s", what, s.vm.path)
	return b.doTask(ctx, "remove build settings", "removing "+what+" from "+s.vm.path, func() (*object.Task, error) {
		return s.vm.vm.Reconfigure(ctx, spec)
	})
}
