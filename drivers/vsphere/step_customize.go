package vsphere

import (
	"context"
	"fmt"
	"net"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// stepCustomize applies the guest customization (host name, domain, time
// zone, addresses): vSphere hands it to VMware Tools in the guest at the
// next power-on. Nothing to undo: the clone is removed as a whole when the
// build fails.
type stepCustomize struct {
	env *buildEnv
	vm  *vmHandle
}

// Name implements step.Step.
func (s *stepCustomize) Name() string { return "customize guest" }

// Run implements step.Step.
func (s *stepCustomize) Run(ctx context.Context) error {
	b := s.env
	var o mo.VirtualMachine
	if err := s.vm.vm.Properties(ctx, s.vm.vm.Reference(), []string{"config.hardware.device"}, &o); err != nil {
		return fmt.Errorf("reading the devices of %s: %s", s.vm.path, explain(err))
	}
	nics := len(object.VirtualDeviceList(o.Config.Hardware.Device).SelectByType((*types.VirtualEthernetCard)(nil)))
	spec, err := s.customizationSpec(nics)
	if err != nil {
		return err
	}
	b.say("customizing %s (host name %s)", s.vm.path, spec.Identity.(*types.CustomizationLinuxPrep).HostName.(*types.CustomizationFixedName).Name)
	return b.doTask(ctx, "customize", "customizing "+s.vm.path, func() (*object.Task, error) {
		return s.vm.vm.Customize(ctx, spec)
	})
}

// customizationSpec builds the Linux customization for a VM with nics
// network adapters.
func (s *stepCustomize) customizationSpec(nics int) (types.CustomizationSpec, error) {
	b := s.env
	c := b.clone.Customize
	lo := c.LinuxOptions
	host := lo.HostName
	if host == "" {
		host = hostLabel(b.name)
	}
	domain := lo.Domain
	if domain == "" {
		domain = "localdomain"
	}
	utc := lo.HWClockUTC
	spec := types.CustomizationSpec{
		Identity: &types.CustomizationLinuxPrep{
			HostName:   &types.CustomizationFixedName{Name: host},
			Domain:     domain,
			TimeZone:   lo.TimeZone,
			HwClockUTC: &utc,
		},
		GlobalIPSettings: types.CustomizationGlobalIPSettings{
			DnsSuffixList: c.DNSSuffixes,
			DnsServerList: c.DNSServers,
		},
	}
	ifaces := c.NetworkInterfaces
	if len(ifaces) > 0 && len(ifaces) != nics {
		return spec, fmt.Errorf("customize has %d network_interface entries but %s has %d network adapter(s): give one entry per adapter, in order", len(ifaces), s.vm.path, nics)
	}
	for i := 0; i < nics; i++ {
		settings := types.CustomizationIPSettings{Ip: &types.CustomizationDhcpIpGenerator{}}
		if i < len(ifaces) {
			n := ifaces[i]
			if n.IPv4Address != "" {
				settings.Ip = &types.CustomizationFixedIp{IpAddress: n.IPv4Address}
				settings.SubnetMask = net.IP(net.CIDRMask(n.IPv4Netmask, 32)).String()
				if c.IPv4Gateway != "" {
					settings.Gateway = []string{c.IPv4Gateway}
				}
			}
			settings.DnsServerList = n.DNSServers
			settings.DnsDomain = n.DNSDomain
		}
		spec.NicSettingMap = append(spec.NicSettingMap, types.CustomizationAdapterMapping{Adapter: settings})
	}
	return spec, nil
}
