package ova_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/diskpost/diskposttest"
	"github.com/imgbuild/imgbuild/drivers/ova"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/vsphere/vcsimtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/ovf/importer"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// members reads a tar: names in order and contents.
func members(t *testing.T, p string) ([]string, map[string][]byte, []*tar.Header) {
	t.Helper()
	var names []string
	var hdrs []*tar.Header
	data := map[string][]byte{}
	testkit.TarEntries(t, p, func(h *tar.Header, r io.Reader) {
		b, _ := io.ReadAll(r)
		names, data[h.Name], hdrs = append(names, h.Name), b, append(hdrs, h)
	})
	return names, data, hdrs
}

func makeOVA(t *testing.T, settings map[string]any) (string, *engine.Artifact, *engine.Artifact) {
	t.Helper()
	ws := t.TempDir()
	in := diskposttest.Artifact(t, ws, "web", 96<<20)
	env, _ := diskposttest.Env(t, ws, "web")
	out, err := diskposttest.MustNew(t, ova.Def(), settings).PostProcess(context.Background(), env, in)
	if err != nil {
		t.Fatal(err)
	}
	return ws, in, out
}

// TestTheOVAImportsIntoVSphereAsDeclared imports the OVA into vcsim with
// govmomi's OVF importer (the code govc import.ova runs) and finds the VM
// with the CPUs, memory, guest and disk the keywords declared. vcsim's
// lease computes only SHA-1 sums of what is uploaded, so the manifest the
// importer verifies against the server's is a SHA-1 one; the SHA-256
// manifest is checked member by member in
// TestTheOVAFollowsTheOVFSpecification.
func TestTheOVAImportsIntoVSphereAsDeclared(t *testing.T) {
	ws, in, out := makeOVA(t, map[string]any{"cpus": 2, "memory": 1536, "vm_name": "appliance", "product": "Web", "vendor": "Acme", "product_version": "1.2", "manifest": "sha1"})
	rel := out.Fields["ova"].(string)
	if rel != "output/web/web.ova" || out.ID != rel || out.Files[len(out.Files)-1] != rel || out.Fields["disk"] != in.Fields["disk"] {
		t.Fatalf("artifact %+v", out)
	}
	p := filepath.Join(ws, rel)
	sum, _ := qemuimg.SHA256(context.Background(), p)
	if out.Fields["ova_checksum"] != "sha256:"+sum {
		t.Errorf("ova_checksum %v, file's sha256 %s", out.Fields["ova_checksum"], sum)
	}

	sim := vcsimtest.Start(t)
	ctx := context.Background()
	dc, err := sim.Finder.DefaultDatacenter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sim.Finder.SetDatacenter(dc)
	ds, err := sim.Finder.DefaultDatastore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := sim.Finder.ResourcePoolOrDefault(ctx, "DC0_C0/Resources")
	if err != nil {
		t.Fatal(err)
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	imp := &importer.Importer{
		Client: sim.Client.Client, Finder: sim.Finder, Datacenter: dc, Datastore: ds, ResourcePool: pool, Folder: folders.VmFolder,
		Archive:        &importer.TapeArchive{Path: p},
		VerifyManifest: true,
		Log:            func(s string) (int, error) { log.WriteString(s); return len(s), nil },
	}
	ref, err := imp.Import(ctx, "*.ovf", importer.Options{})
	if err != nil {
		t.Fatalf("import: %v\n%s", err, log.String())
	}
	var vm mo.VirtualMachine
	if err := object.NewVirtualMachine(sim.Client.Client, *ref).Properties(ctx, *ref, []string{"name", "config"}, &vm); err != nil {
		t.Fatal(err)
	}
	hw := vm.Config.Hardware
	if vm.Name != "appliance" || hw.NumCPU != 2 || hw.MemoryMB != 1536 || vm.Config.GuestId != "debian12_64Guest" {
		t.Errorf("imported VM %q: %d CPUs, %d MB, guest %q; want appliance, 2, 1536, debian12_64Guest", vm.Name, hw.NumCPU, hw.MemoryMB, vm.Config.GuestId)
	}
	var disks, nics int
	for _, d := range hw.Device {
		switch d := d.(type) {
		case *types.VirtualDisk:
			disks++
			if d.CapacityInKB != 96<<10 {
				t.Errorf("disk of %d KiB, want %d", d.CapacityInKB, 96<<10)
			}
		case types.BaseVirtualEthernetCard:
			nics++
		}
	}
	if disks != 1 || nics != 1 {
		t.Errorf("%d disks and %d network adapters, want one of each", disks, nics)
	}
}

// TestTheOVAFollowsTheOVFSpecification checks the package against DSP0243:
// a USTAR archive, the descriptor first, then the manifest, then the
// files in the order of References; every manifest sum is the member's;
// the VMDK is streamOptimized as qemu-img reads it; the descriptor is in
// OVF 1.0's namespaces.
func TestTheOVAFollowsTheOVFSpecification(t *testing.T) {
	ws, _, out := makeOVA(t, nil)
	names, data, hdrs := members(t, filepath.Join(ws, out.Fields["ova"].(string)))
	if got := strings.Join(names, " "); got != "web.ovf web.mf web-disk1.vmdk" {
		t.Fatalf("members %s", got)
	}
	for _, h := range hdrs {
		if h.Format != tar.FormatUSTAR {
			t.Errorf("%s is %v, want USTAR", h.Name, h.Format)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data["web.mf"])), "\n") {
		var name, sum string
		if _, err := fmt.Sscanf(strings.Replace(strings.Replace(line, "SHA256(", "", 1), ")= ", " ", 1), "%s %s", &name, &sum); err != nil {
			t.Fatalf("manifest line %q: %v", line, err)
		}
		h := sha256.Sum256(data[name])
		if hex.EncodeToString(h[:]) != sum {
			t.Errorf("manifest sum of %s is not its content's", name)
		}
	}
	vmdk := filepath.Join(t.TempDir(), "d.vmdk")
	os.WriteFile(vmdk, data["web-disk1.vmdk"], 0o644)
	info, err := qemuimg.ReadInfo(context.Background(), vmdk, "")
	if err != nil || info.Format != "vmdk" || info.VirtualSize != 96<<20 {
		t.Errorf("qemu-img info: %+v %v", info, err)
	}
	if _, err := qemuimg.Check(context.Background(), vmdk, "vmdk"); err != nil {
		t.Error(err)
	}
	if raw, _ := execOutput("qemu-img", "info", "--output=json", vmdk); !strings.Contains(raw, `"create-type": "streamOptimized"`) {
		t.Errorf("the VMDK is not streamOptimized: %s", raw)
	}
	ovf := string(data["web.ovf"])
	for _, want := range []string{
		`<Envelope ovf:version="1.0"`, `xmlns="http://schemas.dmtf.org/ovf/envelope/1"`,
		`<File ovf:id="file1" ovf:href="web-disk1.vmdk" ovf:size="` + fmt.Sprint(len(data["web-disk1.vmdk"])) + `"`,
		`ovf:capacity="100663296"`, `ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"`,
		`<OperatingSystemSection ovf:id="96" vmw:osType="debian12_64Guest">`, `<vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>`,
		`<rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>`, `<rasd:Connection>VM Network</rasd:Connection>`,
	} {
		if !strings.Contains(ovf, want) {
			t.Errorf("the descriptor lacks %s:\n%s", want, ovf)
		}
	}
}

func TestABigDiskIsSplitInChunks(t *testing.T) {
	restore := ova.SetChunking(64<<10, 16<<10)
	defer restore()
	ws, _, out := makeOVA(t, map[string]any{"manifest": "sha1"})
	names, data, _ := members(t, filepath.Join(ws, out.Fields["ova"].(string)))
	if len(names) < 4 || names[2] != "web-disk1.vmdk.000000000" || names[3] != "web-disk1.vmdk.000000001" {
		t.Fatalf("members %v", names)
	}
	if !strings.Contains(string(data["web.ovf"]), `ovf:chunkSize="16384"`) || !strings.Contains(string(data["web.mf"]), "SHA1(web-disk1.vmdk.000000001)= ") {
		t.Errorf("descriptor or manifest does not name the chunks:\n%s\n%s", data["web.ovf"], data["web.mf"])
	}
	var whole []byte
	for _, n := range names[2:] {
		whole = append(whole, data[n]...)
	}
	vmdk := filepath.Join(t.TempDir(), "d.vmdk")
	os.WriteFile(vmdk, whole, 0o644)
	if _, err := qemuimg.Check(context.Background(), vmdk, "vmdk"); err != nil {
		t.Errorf("the chunks put together: %v", err)
	}
}

func TestBadInputSaysWhatIsWrong(t *testing.T) {
	for _, c := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{"guest_os_type": "debain12_64Guest"}, `guest_os_type: "debain12_64Guest" is not a VMware guest id (did you mean "debian12_64Guest"?)`},
		{map[string]any{"network_adapter": "virtio"}, `network_adapter: "virtio" is not one of "e1000", "e1000e", "vmxnet3"`},
		{map[string]any{"memory": 16}, "memory: 16 MiB is too little to boot"},
		{map[string]any{"vm_name": "my vm"}, `vm_name: "my vm" is not a machine name`},
	} {
		if _, err := diskposttest.New(t, ova.Def(), c.settings); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %s", c.settings, err, c.want)
		}
	}
	ws := t.TempDir()
	env, _ := diskposttest.Env(t, ws, "api")
	_, err := diskposttest.MustNew(t, ova.Def(), nil).PostProcess(context.Background(), env, &engine.Artifact{Build: "api", Driver: "amazon_ebs", ID: "ami-0abc"})
	if want := `build "api" (amazon_ebs) made "ami-0abc" with no files, which is not a disk: ova() converts the disk of a qemu() or rootfs() build`; err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
