package vmware_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/diskpost/diskposttest"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/vmware"
	"github.com/imgbuild/imgbuild/engine"
)

// TestTheFolderHoldsAVMXAndADiskWorkstationOpens checks the folder
// against what Workstation reads: the .vmx parses as VMware's reader
// does (quoted values, |XX escapes) with the keys a machine needs, its
// disk entry names a VMDK beside it that qemu-img reads as the subformat
// asked for, with the build's data.
func TestTheFolderHoldsAVMXAndADiskWorkstationOpens(t *testing.T) {
	for _, c := range []struct {
		settings map[string]any
		disk     string // the subformat qemu-img reports
		extents  int
	}{
		{map[string]any{"cpus": 2, "memory": 2048, "vmx_data": map[string]string{"annotation": `a "quoted" | note`}}, "monolithicSparse", 0},
		{map[string]any{"disk_type": "twoGbMaxExtentSparse", "disk_adapter_type": "sata", "network": "none", "output_directory": "output/web/split"}, "twoGbMaxExtentSparse", 1},
	} {
		t.Run(c.disk, func(t *testing.T) {
			ws := t.TempDir()
			in := diskposttest.Artifact(t, ws, "web", 64<<20)
			env, _ := diskposttest.Env(t, ws, "web")
			out, err := diskposttest.MustNew(t, vmware.Def(), c.settings).PostProcess(context.Background(), env, in)
			if err != nil {
				t.Fatal(err)
			}
			vmxRel := out.Fields["vmx"].(string)
			if out.ID != vmxRel || !strings.HasSuffix(vmxRel, "/web.vmx") || out.Fields["disk"] != in.Fields["disk"] {
				t.Fatalf("artifact %+v", out)
			}
			text, err := os.ReadFile(filepath.Join(ws, vmxRel))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(text), ".encoding = \"UTF-8\"\n") {
				t.Errorf("the .vmx does not start with its encoding:\n%s", text)
			}
			kv, err := vmware.ParseVMX(string(text))
			if err != nil {
				t.Fatal(err)
			}
			dev := "scsi0:0"
			if c.settings["disk_adapter_type"] == "sata" {
				dev = "sata0:0"
			}
			for k, want := range map[string]string{
				"config.version": "8", "virtualHW.version": "13", "guestOS": "debian12-64", "displayName": "web",
				dev + ".present": "TRUE", dev + ".fileName": "web.vmdk",
			} {
				if kv[k] != want {
					t.Errorf("%s = %q, want %q", k, kv[k], want)
				}
			}
			if c.settings["cpus"] == 2 && (kv["numvcpus"] != "2" || kv["memsize"] != "2048" || kv["annotation"] != `a "quoted" | note` || kv["ethernet0.connectionType"] != "nat") {
				t.Errorf("the .vmx: %v", kv)
			}
			if c.settings["network"] == "none" && kv["ethernet0.present"] != "" {
				t.Errorf("network none has an adapter: %v", kv)
			}
			vmdk := filepath.Join(ws, filepath.Dir(vmxRel), kv[dev+".fileName"])
			raw, err := exec(t, "qemu-img", "info", "--output=json", vmdk)
			if err != nil || !strings.Contains(raw, `"create-type": "`+c.disk+`"`) {
				t.Errorf("qemu-img info: %v %s", err, raw)
			}
			if _, err := qemuimg.Check(context.Background(), vmdk, "vmdk"); err != nil {
				t.Error(err)
			}
			if err := qemuimg.Compare(context.Background(), filepath.Join(ws, in.Fields["disk"].(string)), "qcow2", vmdk, "vmdk"); err != nil {
				t.Error(err)
			}
			if extents, _ := filepath.Glob(filepath.Join(filepath.Dir(vmdk), "web-s*.vmdk")); len(extents) != c.extents {
				t.Errorf("extents %v, want %d", extents, c.extents)
			}
			for _, f := range out.Files[1:] {
				if _, err := os.Stat(filepath.Join(ws, f)); err != nil {
					t.Errorf("artifact file %s: %v", f, err)
				}
			}
		})
	}
}

func TestBadInputSaysWhatIsWrong(t *testing.T) {
	for _, c := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{"guest_os_type": "debian12_64Guest"}, `guest_os_type: "debian12_64Guest" is not a .vmx guestOS value (lower case, such as "debian12-64" or "otherlinux-64"); it reads like a vSphere guest id, which ova() takes`},
		{map[string]any{"memory": 1023}, "memory: 1023 MiB is not a memory size VMware takes"},
		{map[string]any{"vmx_data": map[string]string{"bad key": "x"}}, `vmx_data: "bad key" is not a .vmx key`},
		{map[string]any{"network": "natt"}, `network: "natt" is not one of "nat", "bridged", "hostonly", "none" (did you mean "nat"?)`},
	} {
		if _, err := diskposttest.New(t, vmware.Def(), c.settings); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v\nwant %s", c.settings, err, c.want)
		}
	}
}

// TestAnArtifactThatIsNotADiskNamesTheBuildAndWhatItMade: no folder is
// made from a build without a disk, and the message says which build made
// what.
func TestAnArtifactThatIsNotADiskNamesTheBuildAndWhatItMade(t *testing.T) {
	ws := t.TempDir()
	env, _ := diskposttest.Env(t, ws, "api")
	p := diskposttest.MustNew(t, vmware.Def(), nil)
	for _, c := range []struct {
		in   *engine.Artifact
		want string
	}{
		{&engine.Artifact{Build: "api", Driver: "amazon_ebs", ID: "ami-0abc", Fields: map[string]any{"image_id": "ami-0abc"}},
			`build "api" (amazon_ebs) made "ami-0abc" with no files, which is not a disk: vmware_vmx() converts the disk of a qemu() or rootfs() build`},
		{&engine.Artifact{Build: "api", Driver: "rootfs", ID: "output/api/api.tar", Files: []string{"output/api/api.tar"}, Fields: map[string]any{"disk": "", "tar": "output/api/api.tar"}},
			`build "api" (rootfs) made no disk, only the tar output/api/api.tar: vmware_vmx() converts a disk; add "qcow2" or "raw" to its formats`},
	} {
		_, err := p.PostProcess(context.Background(), env, c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v\nwant %s", err, c.want)
		}
	}
	if entries, _ := filepath.Glob(filepath.Join(ws, "output/*")); len(entries) > 0 {
		t.Errorf("left: %v", entries)
	}
}

func FuzzParseVMX(f *testing.F) {
	f.Add(vmware.VMX(vmware.Machine{Name: "a|b\"c", GuestOS: "debian12-64", CPUs: 1, MemoryMiB: 64, HWVersion: 13, Disk: "d.vmdk", Network: "nat", NetworkAdapter: "e1000"}))
	f.Add("key = \"|0A\"\n# comment\n\nx.y = \"\"")
	f.Add("k = \"|4\"")
	f.Fuzz(func(t *testing.T, text string) {
		kv, err := vmware.ParseVMX(text)
		if err != nil {
			return
		}
		// What parses writes back to the same values.
		extra := map[string]string{}
		for k, v := range kv {
			if k != ".encoding" {
				extra[k] = v
			}
		}
		again, err := vmware.ParseVMX(vmware.VMX(vmware.Machine{Extra: extra, Network: "none"}))
		if err != nil {
			t.Fatalf("VMX of what parsed does not parse: %v", err)
		}
		for k, v := range extra {
			if again[k] != v {
				t.Fatalf("%s: %q became %q", k, v, again[k])
			}
		}
	})
}
