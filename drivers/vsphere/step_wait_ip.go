package vsphere

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// stepWaitIP waits for VMware Tools in the guest to report an address in
// ip_wait_address that stays the same for ip_settle_timeout: the address
// SSH connects to. It fails early when guest customization failed.
type stepWaitIP struct {
	env *buildEnv
	vm  *vmHandle

	// outputs
	ip string
}

// Name implements step.Step.
func (s *stepWaitIP) Name() string { return "wait for IP" }

// guestAddresses is what the guest reported so far.
type guestAddresses struct {
	net           []types.GuestNicInfo
	ip            string
	customization *types.GuestInfoCustomizationInfo
}

func (g *guestAddresses) apply(c types.PropertyChange) {
	switch c.Name {
	case "guest.net":
		switch v := c.Val.(type) {
		case types.ArrayOfGuestNicInfo:
			g.net = v.GuestNicInfo
		case []types.GuestNicInfo:
			g.net = v
		case nil:
			g.net = nil
		}
	case "guest.ipAddress":
		g.ip, _ = c.Val.(string)
	case "guest.customizationInfo":
		switch v := c.Val.(type) {
		case types.GuestInfoCustomizationInfo:
			g.customization = &v
		case *types.GuestInfoCustomizationInfo:
			g.customization = v
		}
	}
}

// pick returns the first reported address in network, skipping link-local
// ones.
func (g *guestAddresses) pick(network *net.IPNet) string {
	var all []string
	for _, n := range g.net {
		all = append(all, n.IpAddress...)
	}
	all = append(all, g.ip)
	for _, a := range all {
		ip := net.ParseIP(a)
		if ip == nil || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
			continue
		}
		if network.Contains(ip) {
			return ip.String()
		}
	}
	return ""
}

// reported lists every address reported, for messages.
func (g *guestAddresses) reported() []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range g.net {
		for _, a := range n.IpAddress {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	if g.ip != "" && !seen[g.ip] {
		out = append(out, g.ip)
	}
	return out
}

var errCustomizationFailed = errors.New("guest customization failed")

// Run implements step.Step.
func (s *stepWaitIP) Run(ctx context.Context) error {
	b := s.env
	_, network, err := net.ParseCIDR(b.fin.IPWaitAddress)
	if err != nil {
		return fmt.Errorf("ip_wait_address %q: %v", b.fin.IPWaitAddress, err)
	}
	timeout := b.fin.IPWaitTimeout
	b.say("waiting up to %s for VMware Tools to report an IP address of %s in %s", timeout, s.vm.path, network)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var g guestAddresses
	for {
		ip, err := s.nextAddress(wctx, network, &g)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if wctx.Err() != nil {
				return s.noAddress(network, timeout, &g)
			}
			return err
		}
		if b.fin.IPSettleTimeout <= 0 {
			s.ip = ip
			break
		}
		b.say("%s reported %s; checking that it stays for %s", s.vm.path, ip, b.fin.IPSettleTimeout)
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(b.fin.IPSettleTimeout):
		}
		again, err := s.currentAddress(ctx, network)
		if err != nil {
			return ctxErr(ctx, fmt.Errorf("reading the guest's address: %s", explain(err)))
		}
		if again == ip {
			s.ip = ip
			break
		}
		b.say("the address changed to %q; waiting again", again)
		if wctx.Err() != nil {
			return s.noAddress(network, timeout, &g)
		}
	}
	b.say("%s has address %s", s.vm.path, s.ip)
	return nil
}

// nextAddress waits until the guest reports an address in network.
func (s *stepWaitIP) nextAddress(ctx context.Context, network *net.IPNet, g *guestAddresses) (string, error) {
	pc := property.DefaultCollector(s.vm.vm.Client())
	var found string
	var failure error
	err := property.Wait(ctx, pc, s.vm.vm.Reference(), []string{"guest.net", "guest.ipAddress", "guest.customizationInfo"}, func(changes []types.PropertyChange) bool {
		for _, c := range changes {
			g.apply(c)
		}
		if ci := g.customization; ci != nil && ci.CustomizationStatus == string(types.GuestInfoCustomizationStatusTOOLSDEPLOYPKG_FAILED) {
			failure = fmt.Errorf("%w in %s: %s; the guest reports why in /var/log/vmware-imc/toolsDeployPkg.log", errCustomizationFailed, s.vm.path, strings.TrimSpace(ci.ErrorMsg))
			return true
		}
		found = g.pick(network)
		return found != ""
	})
	if failure != nil {
		return "", failure
	}
	if err != nil {
		return "", err
	}
	return found, nil
}

func (s *stepWaitIP) currentAddress(ctx context.Context, network *net.IPNet) (string, error) {
	var o mo.VirtualMachine
	if err := s.vm.vm.Properties(ctx, s.vm.vm.Reference(), []string{"guest.net", "guest.ipAddress"}, &o); err != nil {
		return "", err
	}
	g := guestAddresses{}
	if o.Guest != nil {
		g.net, g.ip = o.Guest.Net, o.Guest.IpAddress
	}
	return g.pick(network), nil
}

// noAddress is the error for an ip_wait_timeout that expired.
func (s *stepWaitIP) noAddress(network *net.IPNet, timeout time.Duration, g *guestAddresses) error {
	seen := "it reported no address at all"
	if r := g.reported(); len(r) > 0 {
		seen = "it reported only " + strings.Join(r, ", ")
	}
	return fmt.Errorf("VMware Tools reported no IP address in %s for %s within ip_wait_timeout (%s); %s: check that the guest boots, runs VMware Tools (open-vm-tools) and gets an address on its network, widen ip_wait_address or raise ip_wait_timeout, or set ssh_host to connect to a known address",
		network, s.vm.path, timeout, seen)
}
