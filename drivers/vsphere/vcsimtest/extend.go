package vcsimtest

import (
	"crypto/sha256"
	"fmt"
	"html"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// exportVM adds ExportVm to a simulated VM. The harness puts it in the
// model for one call; the method puts the plain VM back.
type exportVM struct {
	*simulator.VirtualMachine
	sim *Sim
}

// exportLease is an HttpNfcLease for an export, serving each disk of the VM
// as a deterministic stream of bytes.
type exportLease struct {
	mo.HttpNfcLease
	sim    *Sim
	id     string
	files  map[string][]byte
	closed bool
}

var leaseCounter atomic.Int64

// ExportVm starts an export of a powered-off VM or template.
func (v *exportVM) ExportVm(ctx *simulator.Context, req *types.ExportVm) soap.HasFault {
	defer ctx.Map.Put(v.VirtualMachine)
	body := &methods.ExportVmBody{}
	if body.Fault_ = powerStateFault(v.VirtualMachine, types.VirtualMachinePowerStatePoweredOff); body.Fault_ != nil {
		return body
	}
	id := fmt.Sprintf("lease%d", leaseCounter.Add(1))
	lease := &exportLease{sim: v.sim, id: id, files: map[string][]byte{}}
	lease.Self = types.ManagedObjectReference{Type: "HttpNfcLease"}
	var urls []types.HttpNfcLeaseDeviceUrl
	var total int64
	disks := object.VirtualDeviceList(v.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil))
	for i, d := range disks {
		target := fmt.Sprintf("disk-%d.vmdk", i)
		// A stand-in for the stream-optimized disk: small, and different
		// for every VM and disk.
		data := diskBytes(v.Name, i, 64*1024+i*4096)
		lease.files[target] = data
		total += int64(len(data))
		urls = append(urls, types.HttpNfcLeaseDeviceUrl{
			Key:       fmt.Sprintf("/%s/%d", v.Self.Value, d.GetVirtualDevice().Key),
			ImportKey: fmt.Sprintf("/%s/%d", v.Name, d.GetVirtualDevice().Key),
			Url:       fmt.Sprintf("https://%s/imgbuild-export/%s/%s", v.sim.URL.Host, id, target),
			TargetId:  target,
			Disk:      types.NewBool(true),
			FileSize:  int64(len(data)),
		})
	}
	lease.State = types.HttpNfcLeaseStateReady
	lease.Info = &types.HttpNfcLeaseInfo{
		Entity:                v.Self,
		DeviceUrl:             urls,
		TotalDiskCapacityInKB: total / 1024,
		LeaseTimeout:          300,
	}
	ctx.Session.Put(lease)
	lease.Info.Lease = lease.Self
	v.sim.mu.Lock()
	v.sim.exports[id] = lease
	v.sim.mu.Unlock()
	body.Res = &types.ExportVmResponse{Returnval: lease.Self}
	return body
}

func diskBytes(name string, i, n int) []byte {
	seed := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", name, i)))
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, seed[:]...)
		seed = sha256.Sum256(seed[:])
	}
	return out[:n]
}

func (l *exportLease) close(ctx *simulator.Context, ref types.ManagedObjectReference) {
	l.sim.mu.Lock()
	l.closed = true
	l.sim.mu.Unlock()
	ctx.Session.Remove(ctx, ref)
}

// HttpNfcLeaseComplete ends the export.
func (l *exportLease) HttpNfcLeaseComplete(ctx *simulator.Context, req *types.HttpNfcLeaseComplete) soap.HasFault {
	l.close(ctx, req.This)
	return &methods.HttpNfcLeaseCompleteBody{Res: new(types.HttpNfcLeaseCompleteResponse)}
}

// HttpNfcLeaseAbort abandons the export.
func (l *exportLease) HttpNfcLeaseAbort(ctx *simulator.Context, req *types.HttpNfcLeaseAbort) soap.HasFault {
	l.close(ctx, req.This)
	return &methods.HttpNfcLeaseAbortBody{Res: new(types.HttpNfcLeaseAbortResponse)}
}

// HttpNfcLeaseProgress keeps the lease alive.
func (l *exportLease) HttpNfcLeaseProgress(ctx *simulator.Context, req *types.HttpNfcLeaseProgress) soap.HasFault {
	l.TransferProgress = req.Percent
	return &methods.HttpNfcLeaseProgressBody{Res: new(types.HttpNfcLeaseProgressResponse)}
}

// serveExport serves an open export lease's disks.
func (s *Sim) serveExport(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/imgbuild-export/"), "/")
	if len(parts) != 2 || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	l := s.exports[parts[0]]
	var data []byte
	ok := false
	if l != nil && !l.closed {
		data, ok = l.files[parts[1]]
	}
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	_, _ = w.Write(data)
}

// ovfManager adds CreateDescriptor to vcsim's OvfManager.
type ovfManager struct {
	*simulator.OvfManager
}

// CreateDescriptor describes a VM as an OVF envelope naming the files the
// client exported, as vCenter does.
func (m *ovfManager) CreateDescriptor(ctx *simulator.Context, req *types.CreateDescriptor) soap.HasFault {
	body := &methods.CreateDescriptorBody{}
	vm, ok := ctx.Map.Get(req.Obj).(*simulator.VirtualMachine)
	if !ok {
		body.Fault_ = simulator.Fault("", &types.ManagedObjectNotFound{Obj: req.Obj})
		return body
	}
	var b strings.Builder
	name := req.Cdp.Name
	if name == "" {
		name = vm.Name
	}
	esc := html.EscapeString
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">` + "\n")
	b.WriteString("  <References>\n")
	for i, f := range req.Cdp.OvfFiles {
		fmt.Fprintf(&b, "    <File ovf:id=\"file%d\" ovf:href=\"%s\" ovf:size=\"%d\"/>\n", i+1, esc(f.Path), f.Size)
	}
	b.WriteString("  </References>\n  <DiskSection>\n    <Info>Virtual disk information</Info>\n")
	disks := object.VirtualDeviceList(vm.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil))
	for i, d := range disks {
		capacity := d.(*types.VirtualDisk).CapacityInKB * 1024
		fmt.Fprintf(&b, "    <Disk ovf:diskId=\"vmdisk%d\" ovf:fileRef=\"file%d\" ovf:capacity=\"%d\" ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\"/>\n", i+1, i+1, capacity)
	}
	b.WriteString("  </DiskSection>\n")
	fmt.Fprintf(&b, "  <VirtualSystem ovf:id=\"%s\">\n    <Info>A virtual machine</Info>\n    <Name>%s</Name>\n", esc(name), esc(name))
	fmt.Fprintf(&b, "    <OperatingSystemSection ovf:id=\"1\" ovf:osType=\"%s\"><Info>The guest OS</Info></OperatingSystemSection>\n", esc(vm.Config.GuestId))
	b.WriteString("    <VirtualHardwareSection>\n      <Info>Virtual hardware requirements</Info>\n")
	fmt.Fprintf(&b, "      <Item><rasd:ElementName>%d virtual CPU(s)</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>%d</rasd:VirtualQuantity></Item>\n", vm.Config.Hardware.NumCPU, vm.Config.Hardware.NumCPU)
	fmt.Fprintf(&b, "      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>%dMB of memory</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>%d</rasd:VirtualQuantity></Item>\n", vm.Config.Hardware.MemoryMB, vm.Config.Hardware.MemoryMB)
	for i := range disks {
		fmt.Fprintf(&b, "      <Item><rasd:ElementName>Hard disk %d</rasd:ElementName><rasd:HostResource>ovf:/disk/vmdisk%d</rasd:HostResource><rasd:InstanceID>%d</rasd:InstanceID><rasd:ResourceType>17</rasd:ResourceType></Item>\n", i+1, i+1, 10+i)
	}
	b.WriteString("    </VirtualHardwareSection>\n  </VirtualSystem>\n</Envelope>\n")
	body.Res = &types.CreateDescriptorResponse{Returnval: types.OvfCreateDescriptorResult{OvfDescriptor: b.String()}}
	return body
}

// keyboardVM adds PutUsbScanCodes to a simulated VM. The harness puts it in
// the model for one call; the method puts the plain VM back.
type keyboardVM struct {
	*simulator.VirtualMachine
	sim *Sim
}

// PutUsbScanCodes records the keys typed on a powered-on VM's keyboard.
func (v *keyboardVM) PutUsbScanCodes(ctx *simulator.Context, req *types.PutUsbScanCodes) soap.HasFault {
	defer ctx.Map.Put(v.VirtualMachine)
	body := &methods.PutUsbScanCodesBody{}
	if body.Fault_ = powerStateFault(v.VirtualMachine, types.VirtualMachinePowerStatePoweredOn); body.Fault_ != nil {
		return body
	}
	var text strings.Builder
	for _, e := range req.Spec.KeyEvents {
		text.WriteString(DecodeKey(e))
	}
	v.sim.typedOn(v.VirtualMachine, text.String())
	body.Res = &types.PutUsbScanCodesResponse{Returnval: int32(len(req.Spec.KeyEvents))}
	return body
}

// DecodeKey renders one USB key event as a console would show it: the
// character a US keyboard types, or <enter>, <f2>, <ctrl+alt+del>...
func DecodeKey(e types.UsbScanCodeSpecKeyEvent) string {
	if e.UsbHidCode&0xffff != 0x07 {
		return fmt.Sprintf("<page 0x%x?>", e.UsbHidCode&0xffff)
	}
	code := e.UsbHidCode >> 16
	m := e.Modifiers
	on := func(p *bool) bool { return p != nil && *p }
	shift := m != nil && (on(m.LeftShift) || on(m.RightShift))
	var mods []string
	if m != nil {
		if on(m.LeftControl) || on(m.RightControl) {
			mods = append(mods, "ctrl")
		}
		if on(m.LeftAlt) || on(m.RightAlt) {
			mods = append(mods, "alt")
		}
		if on(m.LeftGui) || on(m.RightGui) {
			mods = append(mods, "super")
		}
	}
	ch := ""
	switch {
	case code >= 0x04 && code <= 0x1d:
		c := rune('a' + code - 0x04)
		if shift {
			c -= 'a' - 'A'
		}
		ch = string(c)
	case code >= 0x1e && code <= 0x27:
		digits, shifted := "1234567890", "!@#$%^&*()"
		if shift {
			ch = string(shifted[code-0x1e])
		} else {
			ch = string(digits[code-0x1e])
		}
	default:
		if p, ok := usPunct[code]; ok {
			ch = string(p[0])
			if shift {
				ch = string(p[1])
			}
		} else if n, ok := usSpecial[code]; ok {
			if len(mods) > 0 || shift {
				if shift {
					mods = append(mods, "shift")
				}
				return "<" + strings.Join(mods, "+") + "+" + n + ">"
			}
			return "<" + n + ">"
		} else {
			return fmt.Sprintf("<0x%x>", code)
		}
	}
	if len(mods) > 0 {
		return "<" + strings.Join(mods, "+") + "+" + ch + ">"
	}
	return ch
}

var usPunct = map[int32][2]rune{
	0x2c: {' ', ' '}, 0x2d: {'-', '_'}, 0x2e: {'=', '+'}, 0x2f: {'[', '{'}, 0x30: {']', '}'},
	0x31: {'\\', '|'}, 0x33: {';', ':'}, 0x34: {'\'', '"'}, 0x35: {'`', '~'}, 0x36: {',', '<'},
	0x37: {'.', '>'}, 0x38: {'/', '?'},
}

var usSpecial = map[int32]string{
	0x28: "enter", 0x29: "esc", 0x2a: "bs", 0x2b: "tab",
	0x3a: "f1", 0x3b: "f2", 0x3c: "f3", 0x3d: "f4", 0x3e: "f5", 0x3f: "f6",
	0x40: "f7", 0x41: "f8", 0x42: "f9", 0x43: "f10", 0x44: "f11", 0x45: "f12",
	0x49: "insert", 0x4a: "home", 0x4b: "pageUp", 0x4c: "del", 0x4d: "end", 0x4e: "pageDown",
	0x4f: "right", 0x50: "left", 0x51: "down", 0x52: "up", 0x65: "menu",
}

// powerStateFault is the fault of a call that needs vm in state want, or
// nil when it is.
func powerStateFault(vm *simulator.VirtualMachine, want types.VirtualMachinePowerState) *soap.Fault {
	if vm.Runtime.PowerState == want {
		return nil
	}
	return simulator.Fault("", &types.InvalidPowerState{RequestedState: want, ExistingState: vm.Runtime.PowerState})
}
