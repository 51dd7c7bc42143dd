package vmware

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Machine is what a .vmx file says about a VMware Workstation or Fusion
// virtual machine.
type Machine struct {
	Name string
	// GuestOS is the VMX guestOS value ("debian12-64", "ubuntu-64",
	// "otherlinux-64").
	GuestOS   string
	CPUs      int
	MemoryMiB int
	// HWVersion is virtualHW.version.
	HWVersion int
	// Firmware is "bios" or "efi".
	Firmware string
	// DiskAdapter is "scsi" (LSI Logic), "sata", "nvme" or "ide"; Disk
	// the VMDK's file name beside the .vmx.
	DiskAdapter, Disk string
	// Network is "nat", "bridged", "hostonly" or "none"; NetworkAdapter
	// the virtual NIC ("e1000", "e1000e", "vmxnet3").
	Network, NetworkAdapter string
	// Extra are more key = value lines (Packer's vmx_data), which win
	// over the ones made from the fields.
	Extra map[string]string
}

// vmxKey is a key VMware's .vmx reader takes.
var vmxKey = regexp.MustCompile(`^[A-Za-z0-9_.:]+$`)

// CheckKey says why k cannot be a .vmx key.
func CheckKey(k string) error {
	if !vmxKey.MatchString(k) {
		return fmt.Errorf("%q is not a .vmx key (letters, digits, '_', '.' and ':', such as \"ethernet0.virtualDev\")", k)
	}
	return nil
}

// VMX is the content of m's .vmx file: UTF-8, one key = "value" a line,
// as Workstation writes it, in key order after the encoding line.
func VMX(m Machine) string {
	kv := map[string]string{
		"config.version":     "8",
		"virtualHW.version":  strconv.Itoa(m.HWVersion),
		"displayName":        m.Name,
		"guestOS":            m.GuestOS,
		"numvcpus":           strconv.Itoa(m.CPUs),
		"memsize":            strconv.Itoa(m.MemoryMiB),
		"pciBridge0.present": "TRUE",
		"pciBridge4.present": "TRUE", "pciBridge4.virtualDev": "pcieRootPort", "pciBridge4.functions": "8",
		"pciBridge5.present": "TRUE", "pciBridge5.virtualDev": "pcieRootPort", "pciBridge5.functions": "8",
		"vmci0.present":   "TRUE",
		"tools.syncTime":  "TRUE",
		"floppy0.present": "FALSE",
		"serial0.present": "FALSE",
	}
	if m.Firmware == "efi" {
		kv["firmware"] = "efi"
	}
	var dev string
	switch m.DiskAdapter {
	case "sata":
		dev = "sata0:0"
		kv["sata0.present"] = "TRUE"
	case "nvme":
		dev = "nvme0:0"
		kv["nvme0.present"] = "TRUE"
	case "ide":
		dev = "ide0:0"
	default:
		dev = "scsi0:0"
		kv["scsi0.present"], kv["scsi0.virtualDev"] = "TRUE", "lsilogic"
	}
	kv[dev+".present"], kv[dev+".fileName"] = "TRUE", m.Disk
	if m.Network != "none" {
		kv["ethernet0.present"] = "TRUE"
		kv["ethernet0.connectionType"] = m.Network
		kv["ethernet0.virtualDev"] = m.NetworkAdapter
		kv["ethernet0.addressType"] = "generated"
		kv["ethernet0.wakeOnPcktRcv"] = "FALSE"
	}
	for k, v := range m.Extra {
		kv[k] = v
	}
	var b strings.Builder
	b.WriteString(".encoding = \"UTF-8\"\n")
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		fmt.Fprintf(&b, "%s = %s\n", k, quote(kv[k]))
	}
	return b.String()
}

// quote writes v as a .vmx value: in double quotes, with VMware's escapes
// for what would end or break it ("|22" for ", "|7C" for |, "|0A" for a
// newline: the .vmx reader decodes |XX as a byte in hex).
func quote(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '"' || c == '|' || c == '#' || c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, "|%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

// ParseVMX reads a .vmx file's keys and values, undoing quote's escapes:
// what Workstation would read. Lines that are blank or comments are
// skipped; a line with no "=" or a key not allowed is an error.
func ParseVMX(text string) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: no \"=\": %q", i+1, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k != ".encoding" {
			if err := CheckKey(k); err != nil {
				return nil, fmt.Errorf("line %d: %v", i+1, err)
			}
		}
		if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return nil, fmt.Errorf("line %d: the value of %s is not in double quotes", i+1, k)
		}
		val, err := unquote(v[1 : len(v)-1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %v", i+1, k, err)
		}
		out[k] = val
	}
	return out, nil
}

func unquote(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return "", fmt.Errorf("an unescaped '\"' inside the value")
		case '|':
			if i+3 > len(s) {
				return "", fmt.Errorf("a '|' without two hex digits")
			}
			n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("a '|' without two hex digits")
			}
			b.WriteByte(byte(n))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
