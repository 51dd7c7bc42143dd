package ova

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/vmware/govmomi/ovf"
	"github.com/vmware/govmomi/vim25/types"
)

// Machine is what an OVF descriptor says about one virtual machine.
type Machine struct {
	// Name is the VM's name, and its VirtualSystem's id.
	Name      string
	CPUs      int
	MemoryMiB int
	// DiskFile is the disk's file name in the package; DiskFileSize its
	// size in bytes, DiskCapacity the disk's virtual size. ChunkSize, when
	// set, is the size of the chunks the file is split into (OVF 1.0
	// section 5.4: DiskFile.000000000, .000000001, ...).
	DiskFile                   string
	DiskFileSize, DiskCapacity int64
	ChunkSize                  int64
	// DiskController is "scsi" (LSI Logic), "sata" (AHCI) or "ide".
	DiskController string
	// Network names the network the machine's one adapter connects to;
	// "" gives it none. NetworkAdapter is "e1000", "e1000e" or
	// "vmxnet3"; MAC, when set, its address (VirtualBox's base MAC).
	Network, NetworkAdapter, MAC string
	// GuestOS is the VMware guest id ("debian12_64Guest"); the CIM
	// operating system id comes from it.
	GuestOS string
	// SystemType is the VirtualSystemType ("vmx-13"; VirtualBox writes
	// "virtualbox-2.2").
	SystemType string
	// Firmware is "bios" or "efi" (a VMware Config entry).
	Firmware string
	// Product, when set, is the appliance's ProductSection.
	Product *Product
	// Annotation is the VM's description.
	Annotation string
}

// Product is the product information of an appliance (OVF's
// ProductSection).
type Product struct {
	Product, Vendor, Version, FullVersion, ProductURL, VendorURL string
}

// Namespaces of an OVF 1.0 descriptor.
const (
	nsOVF  = "http://schemas.dmtf.org/ovf/envelope/1"
	nsRASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
	nsVSSD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
	nsVMW  = "http://www.vmware.com/schema/ovf"
	nsCIM  = "http://schemas.dmtf.org/wbem/wscim/1/common"
	nsXSI  = "http://www.w3.org/2001/XMLSchema-instance"
	// StreamOptimized is the format URI of a streamOptimized VMDK.
	StreamOptimized = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
)

// Envelope returns the OVF envelope describing m, made of govmomi's ovf
// types.
func Envelope(m Machine) *ovf.Envelope {
	str := func(s string) *string { return &s }
	uintp := func(n int) *uint { u := uint(n); return &u }
	rt := func(t ovf.CIMResourceType) *ovf.CIMResourceType { return &t }
	file := ovf.File{ID: "file1", Href: m.DiskFile, Size: uint(m.DiskFileSize)}
	if m.ChunkSize > 0 {
		n := int(m.ChunkSize)
		file.ChunkSize = &n
	}
	env := &ovf.Envelope{
		References: []ovf.File{file},
		Disk: &ovf.DiskSection{
			Section: ovf.Section{Info: "Virtual disk information"},
			Disks: []ovf.VirtualDiskDesc{{
				DiskID: "vmdisk1", FileRef: str("file1"), Capacity: strconv.FormatInt(m.DiskCapacity, 10),
				CapacityAllocationUnits: str("byte"), Format: str(StreamOptimized),
			}},
		},
	}
	hw := ovf.VirtualHardwareSection{
		Section: ovf.Section{Info: "Virtual hardware requirements"},
		System: &ovf.VirtualSystemSettingData{CIMVirtualSystemSettingData: ovf.CIMVirtualSystemSettingData{
			ElementName: "Virtual Hardware Family", InstanceID: "0",
			VirtualSystemIdentifier: str(m.Name), VirtualSystemType: str(m.SystemType),
		}},
	}
	item := func(id int, name string, t ovf.CIMResourceType) ovf.ResourceAllocationSettingData {
		return ovf.ResourceAllocationSettingData{CIMResourceAllocationSettingData: ovf.CIMResourceAllocationSettingData{
			ElementName: name, InstanceID: strconv.Itoa(id), ResourceType: rt(t),
		}}
	}
	cpu := item(1, fmt.Sprintf("%d virtual CPU(s)", m.CPUs), ovf.Processor)
	cpu.AllocationUnits, cpu.VirtualQuantity, cpu.Description = str("hertz * 10^6"), uintp(m.CPUs), str("Number of Virtual CPUs")
	mem := item(2, fmt.Sprintf("%dMB of memory", m.MemoryMiB), ovf.Memory)
	mem.AllocationUnits, mem.VirtualQuantity, mem.Description = str("byte * 2^20"), uintp(m.MemoryMiB), str("Memory Size")
	ctrl := item(3, "", 0)
	switch m.DiskController {
	case "ide":
		ctrl.ElementName, ctrl.ResourceType, ctrl.Description, ctrl.Address = "ideController0", rt(ovf.IdeController), str("IDE Controller"), str("0")
	case "sata":
		ctrl.ElementName, ctrl.ResourceType, ctrl.Description, ctrl.ResourceSubType, ctrl.Address = "sataController0", rt(ovf.OtherStorage), str("SATA Controller"), str("AHCI"), str("0")
	default:
		ctrl.ElementName, ctrl.ResourceType, ctrl.Description, ctrl.ResourceSubType, ctrl.Address = "SCSI Controller 0", rt(ovf.ParallelScsiHba), str("SCSI Controller"), str("lsilogic"), str("0")
	}
	disk := item(4, "Hard Disk 1", ovf.DiskDrive)
	disk.AddressOnParent, disk.Parent, disk.HostResource = str("0"), str("3"), []string{"ovf:/disk/vmdisk1"}
	hw.Item = []ovf.ResourceAllocationSettingData{cpu, mem, ctrl, disk}
	if m.Network != "" {
		env.Network = &ovf.NetworkSection{
			Section:  ovf.Section{Info: "The list of logical networks"},
			Networks: []ovf.Network{{Name: m.Network, Description: "The " + m.Network + " network"}},
		}
		nic := item(5, "Network adapter 1", ovf.EthernetAdapter)
		nic.ResourceSubType, nic.Connection, nic.AddressOnParent = str(adapterSubType(m.NetworkAdapter)), []string{m.Network}, str("7")
		t := true
		nic.AutomaticAllocation = &t
		if m.MAC != "" {
			nic.Address = str(m.MAC)
		}
		hw.Item = append(hw.Item, nic)
	}
	if m.Firmware == "efi" {
		no := false
		hw.Config = append(hw.Config, ovf.Config{Required: &no, Key: "firmware", Value: "efi"})
	}
	cimOS := ovf.GuestIDToCIMOSType(m.GuestOS)
	vs := &ovf.VirtualSystem{
		Content: ovf.Content{ID: m.Name, Info: "A virtual machine", Name: str(m.Name)},
		OperatingSystem: &ovf.OperatingSystemSection{
			Section: ovf.Section{Info: "The kind of installed guest operating system"},
			ID:      int16(cimOS), OSType: str(m.GuestOS), Description: str(m.GuestOS),
		},
		VirtualHardware: []ovf.VirtualHardwareSection{hw},
	}
	if m.Annotation != "" {
		vs.Annotation = &ovf.AnnotationSection{Section: ovf.Section{Info: "A human-readable annotation"}, Annotation: m.Annotation}
	}
	if p := m.Product; p != nil {
		vs.Product = []ovf.ProductSection{{Section: ovf.Section{Info: "Information about the installed software"},
			Product: p.Product, Vendor: p.Vendor, Version: p.Version, FullVersion: p.FullVersion, ProductURL: p.ProductURL, VendorURL: p.VendorURL}}
	}
	env.VirtualSystem = vs
	return env
}

// adapterSubType is the ResourceSubType of a network adapter.
func adapterSubType(adapter string) string {
	switch adapter {
	case "vmxnet3":
		return "VmxNet3"
	case "e1000e":
		return "E1000e"
	}
	return "E1000"
}

// GuestOSKnown reports whether VMware knows the guest id.
func GuestOSKnown(id string) bool {
	return slices.Contains(types.VirtualMachineGuestOsIdentifier("").Values(), types.VirtualMachineGuestOsIdentifier(id))
}

// Descriptor is the OVF 1.0 descriptor of m: the envelope as govmomi's
// types encode it, with each element and attribute put in the namespace
// the OVF schema gives it (govmomi's types carry none: they are made for
// reading, which ignores namespaces) and the settings of each hardware
// item in the order the CIM schema's sequence wants.
func Descriptor(m Machine) ([]byte, error) {
	var plain bytes.Buffer
	if err := Envelope(m).Write(&plain); err != nil {
		return nil, fmt.Errorf("encoding the OVF envelope: %w", err)
	}
	root, err := parseTree(plain.Bytes())
	if err != nil {
		return nil, err
	}
	qualify(root, "")
	root.name = "Envelope"
	root.attrs = append([]xml.Attr{
		{Name: xml.Name{Local: "ovf:version"}, Value: "1.0"},
		{Name: xml.Name{Local: "xml:lang"}, Value: "en-US"},
		{Name: xml.Name{Local: "xmlns"}, Value: nsOVF},
		{Name: xml.Name{Local: "xmlns:ovf"}, Value: nsOVF},
		{Name: xml.Name{Local: "xmlns:rasd"}, Value: nsRASD},
		{Name: xml.Name{Local: "xmlns:vssd"}, Value: nsVSSD},
		{Name: xml.Name{Local: "xmlns:vmw"}, Value: nsVMW},
		{Name: xml.Name{Local: "xmlns:cim"}, Value: nsCIM},
		{Name: xml.Name{Local: "xmlns:xsi"}, Value: nsXSI},
	}, root.attrs...)
	var out bytes.Buffer
	out.WriteString(xml.Header)
	enc := xml.NewEncoder(&out)
	enc.Indent("", "  ")
	if err := root.encode(enc); err != nil {
		return nil, err
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// node is an element of the descriptor while its names are qualified.
type node struct {
	name     string
	attrs    []xml.Attr
	text     string
	children []*node
}

func parseTree(data []byte) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	var stack []*node
	var root *node
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading back the OVF envelope: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: t.Name.Local, attrs: slices.Clone(t.Attr)}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(t)
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("the OVF envelope is empty")
	}
	return root, nil
}

// vmwAttrs are the attributes in VMware's namespace; every other attribute
// of the envelope is in OVF's.
var vmwAttrs = map[string]bool{"osType": true}

// vmwElements are the elements in VMware's namespace.
var vmwElements = map[string]bool{"Config": true, "ExtraConfig": true, "CoresPerSocket": true}

// qualify puts n (whose parent is named parent) and what it holds in
// their namespaces.
func qualify(n *node, parent string) {
	local := n.name
	switch {
	case parent == "Item" && !vmwElements[local]:
		n.name = "rasd:" + local
	case parent == "System":
		n.name = "vssd:" + local
	case vmwElements[local]:
		n.name = "vmw:" + local
	}
	for i, a := range n.attrs {
		prefix := "ovf:"
		if vmwAttrs[a.Name.Local] || vmwElements[local] && a.Name.Local != "required" {
			prefix = "vmw:"
		}
		n.attrs[i].Name = xml.Name{Local: prefix + a.Name.Local}
	}
	if local == "ProductSection" {
		// govmomi writes every product field; OVF wants only those set.
		n.children = slices.DeleteFunc(n.children, func(c *node) bool { return len(c.children) == 0 && c.text == "" })
	}
	for _, c := range n.children {
		qualify(c, local)
	}
	if local == "Item" || local == "System" {
		// The CIM schemas' sequences are in the order of the names.
		slices.SortStableFunc(n.children, func(a, b *node) int {
			return compareCIM(a.name, b.name)
		})
	}
}

// compareCIM orders settings of a CIM class by their names, VMware's own
// after them.
func compareCIM(a, b string) int {
	av, bv := len(a) > 4 && a[:4] == "vmw:", len(b) > 4 && b[:4] == "vmw:"
	switch {
	case av != bv && av:
		return 1
	case av != bv:
		return -1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (n *node) encode(enc *xml.Encoder) error {
	start := xml.StartElement{Name: xml.Name{Local: n.name}, Attr: n.attrs}
	if err := enc.EncodeToken(start); err != nil {
		return err
	}
	if len(n.children) == 0 {
		if err := enc.EncodeToken(xml.CharData(n.text)); err != nil {
			return err
		}
	}
	for _, c := range n.children {
		if err := c.encode(enc); err != nil {
			return err
		}
	}
	return enc.EncodeToken(start.End())
}
