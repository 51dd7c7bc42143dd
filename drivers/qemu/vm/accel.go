package vm

import (
	"fmt"
	"os"
	"strings"
)

// cpuinfoPath and kvmPath are where the accelerator is decided from.
var (
	cpuinfoPath = "/proc/cpuinfo"
	kvmPath     = "/dev/kvm"
)

// Accel is the accelerator chosen for a machine and why.
type Accel struct {
	Name   string // "kvm" or "tcg"
	Reason string
}

// ChooseAccel decides the accelerator for want ("auto", "kvm" or "tcg").
// KVM is used only when it can work: /dev/kvm opens for reading and
// writing, and the CPU flags show hardware virtualization (vmx or svm). A
// /dev/kvm without those flags exists on some virtual machines whose
// kernel then hangs the guest, so it is not enough. Asking for "kvm" when
// it cannot work is an error that says why.
func ChooseAccel(want string) (Accel, error) {
	if want == "tcg" {
		return Accel{Name: "tcg", Reason: "accelerator = \"tcg\""}, nil
	}
	ok, why := kvmUsable()
	switch {
	case ok:
		return Accel{Name: "kvm", Reason: why}, nil
	case want == "kvm":
		return Accel{}, fmt.Errorf("accelerator = \"kvm\", but KVM cannot work here: %s; use accelerator = \"auto\" or \"tcg\"", why)
	}
	return Accel{Name: "tcg", Reason: why + ", so TCG (emulation: several times slower)"}, nil
}

// kvmUsable says whether KVM can work here, and why (not).
func kvmUsable() (bool, string) {
	data, err := os.ReadFile(cpuinfoPath)
	if err != nil {
		return false, fmt.Sprintf("cannot read %s (%v)", cpuinfoPath, err)
	}
	flag := VirtFlag(string(data))
	if flag == "" {
		return false, fmt.Sprintf("the CPU flags in %s show no vmx or svm (no hardware virtualization)", cpuinfoPath)
	}
	f, err := os.OpenFile(kvmPath, os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Sprintf("the CPU has %s but %s cannot be opened (%v)", flag, kvmPath, err)
	}
	f.Close()
	return true, fmt.Sprintf("%s is usable and the CPU has %s", kvmPath, flag)
}

// VirtFlag returns "vmx" (Intel VT-x) or "svm" (AMD-V) when every CPU in
// the text of /proc/cpuinfo lists it among its flags, else "".
func VirtFlag(cpuinfo string) string {
	found := ""
	cpus := 0
	for _, line := range strings.Split(cpuinfo, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(key) != "flags" {
			continue
		}
		cpus++
		this := ""
		for _, f := range strings.Fields(val) {
			if f == "vmx" || f == "svm" {
				this = f
				break
			}
		}
		if this == "" || (found != "" && this != found) {
			return ""
		}
		found = this
	}
	if cpus == 0 {
		return ""
	}
	return found
}
