package vsphere

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/drivers/vsphere/vcsimtest"
)

func TestCloneCustomizesProvisionsAndConvertsToTemplate(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot(t)
	marker := filepath.Join(t.TempDir(), "provisioned")
	j, rec := e.job(CloneDef(), "web", e.cloneKW(map[string]any{
		"vm_name":                  "web-1.2",
		"CPUs":                     4,
		"cpu_cores":                2,
		"RAM":                      4096,
		"disk_size":                4096,
		"network":                  "DC0_DVPG0",
		"notes":                    "built by imgbuild",
		"configuration_parameters": map[string]string{"disk.EnableUUID": "TRUE"},
		"shutdown_command":         "touch " + e.poweroff,
		"convert_to_template":      true,
	}), shell("echo provisioned on $(hostname) > "+marker))
	art, err := run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)

	want := []string{"connect to vCenter", "check placement", "clone template", "configure hardware", "customize guest",
		"power on", "wait for IP", "connect via SSH", "provision", "shut down", "remove build settings", "convert to template"}
	if got := rec.Steps(""); strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("steps:\n got %v\nwant %v", got, want)
	}
	// The provisioner ran over SSH, logged in with the build's key that
	// the guest's cloud-init installed from guestinfo.
	if data, err := os.ReadFile(marker); err != nil || !strings.HasPrefix(string(data), "provisioned on ") {
		t.Errorf("provisioner did not run: %q, %v", data, err)
	}
	if art.ID != "/DC0/vm/web-1.2" || art.Platform != "vsphere" || art.Fields["template"] != "/DC0/vm/web-1.2" ||
		art.Fields["vm_name"] != "web-1.2" || art.Fields["inventory_path"] != "/DC0/vm/web-1.2" || art.Fields["datacenter"] != "DC0" {
		t.Errorf("artifact %+v", art)
	}
	if moref, _ := art.Fields["moref"].(string); !strings.HasPrefix(moref, "vm-") {
		t.Errorf("moref %q", art.Fields["moref"])
	}
	for _, o := range CloneDef().AllOutputs() {
		if _, err := art.Output(o.Name); err != nil {
			t.Errorf("declared output %s: %v", o.Name, err)
		}
	}

	vm := e.sim.VM(t, "/DC0/vm/web-1.2")
	if vm == nil {
		t.Fatalf("no template /DC0/vm/web-1.2; VMs: %v", e.sim.VMs(t))
	}
	if !vm.Config.Template || vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
		t.Errorf("template=%v power=%s", vm.Config.Template, vm.Runtime.PowerState)
	}
	if vm.Config.Hardware.NumCPU != 4 || *vm.Config.Hardware.NumCoresPerSocket != 2 || vm.Config.Hardware.MemoryMB != 4096 {
		t.Errorf("hardware: %d CPUs, %d cores per socket, %d MiB", vm.Config.Hardware.NumCPU, *vm.Config.Hardware.NumCoresPerSocket, vm.Config.Hardware.MemoryMB)
	}
	if vm.Config.Annotation != "built by imgbuild" {
		t.Errorf("notes %q", vm.Config.Annotation)
	}
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	disk := devices.SelectByType((*types.VirtualDisk)(nil))[0].(*types.VirtualDisk)
	if disk.CapacityInKB != 4096*1024 {
		t.Errorf("disk %d KiB, want %d", disk.CapacityInKB, 4096*1024)
	}
	nic := devices.SelectByType((*types.VirtualEthernetCard)(nil))[0].GetVirtualDevice()
	if b, ok := nic.Backing.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo); !ok || b.Port.PortgroupKey == "" {
		t.Errorf("first adapter not moved to DC0_DVPG0: %#v", nic.Backing)
	}
	ec := vcsimtest.ExtraConfig(vm)
	if ec["disk.EnableUUID"] != "TRUE" {
		t.Errorf("configuration_parameters not applied: %v", ec)
	}
	if ec[markerKey] == "" {
		t.Errorf("no %s marker on the template", markerKey)
	}
	// The build's key does not stay in the template.
	for _, k := range []string{guestinfoKey, guestinfoUserdata, guestinfoMetadata} {
		if v, ok := ec[k]; ok {
			t.Errorf("%s left in the template: %q", k, v)
		}
	}
	if vm.Guest.HostName != "web" {
		t.Errorf("customized host name %q, want web", vm.Guest.HostName)
	}
	// Progress was reported for the clone.
	if len(rec.Of("progress")) == 0 {
		t.Errorf("no progress events")
	}
	if touched := e.sim.Touched(before); len(touched) > 0 {
		t.Errorf("changed VMs it did not create: %v", touched)
	}
	if n := vcsimtest.New(before, e.sim.VMs(t)); len(n) != 1 {
		t.Errorf("new VMs %v, want just the template", n)
	}
}

func TestGuestinfoCarriesTheBuildKeyForCloudInit(t *testing.T) {
	b := &buildEnv{fin: Finish{}}
	b.fin.SSH.Username = "admin"
	cfg := b.cloudConfig("ssh-ed25519 AAAAC3 imgbuild web")
	want := "#cloud-config\nusers:\n  - default\n  - name: \"admin\"\n    ssh_authorized_keys:\n      - \"ssh-ed25519 AAAAC3 imgbuild web\"\n"
	if cfg != want {
		t.Errorf("cloud-config:\n%s\nwant:\n%s", cfg, want)
	}
	b.fin.SSH.Username = "root"
	if cfg := b.cloudConfig("k"); !strings.Contains(cfg, "disable_root: false\n") {
		t.Errorf("root login not enabled:\n%s", cfg)
	}
}
