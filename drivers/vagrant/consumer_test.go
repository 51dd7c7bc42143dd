package vagrant_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/diskpost/diskposttest"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/vagrant"
	"github.com/imgbuild/imgbuild/drivers/vmware"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// vagrantCmd runs Debian's vagrant with a private VAGRANT_HOME.
func vagrantCmd(t *testing.T, home string, args ...string) (string, error) {
	t.Helper()
	bin := testkit.RequireProgram(t, "vagrant", "vagrant")
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "VAGRANT_HOME="+home, "VAGRANT_CHECKPOINT_DISABLE=1", "VAGRANT_NO_COLOR=1")
	cmd.Dir = home
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// threeBoxes makes one build's libvirt, virtualbox and vmware_desktop
// boxes, one vagrant_box() each, and its catalog.
func threeBoxes(t *testing.T, ws string, catalog map[string]any) (*engine.Artifact, *engine.Artifact) {
	t.Helper()
	in := diskposttest.Artifact(t, ws, "web", 64<<20)
	env, _ := diskposttest.Env(t, ws, "web")
	art := in
	for _, p := range vagrant.Providers {
		out, err := diskposttest.MustNew(t, vagrant.Def(), map[string]any{"provider": p, "memory": 768, "cpus": 2}).PostProcess(context.Background(), env, art)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		art = out
	}
	out, err := diskposttest.MustNew(t, vagrant.CatalogDef(), catalog).PostProcess(context.Background(), env, art)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Outputs.Finish(false); err != nil {
		t.Fatal(err)
	}
	return in, out
}

// TestVagrantAddsEveryBoxAndTheCatalog adds each provider's box with
// Debian's vagrant box add, then the catalog, which names all three at
// its version with checksums vagrant verifies while adding.
func TestVagrantAddsEveryBoxAndTheCatalog(t *testing.T) {
	ws := t.TempDir()
	_, out := threeBoxes(t, ws, map[string]any{"version": "1.2.0", "box_name": "acme/web", "description": "The web appliance"})
	boxes := out.Fields["boxes"].(map[string]string)
	if len(boxes) != 3 || out.Fields["box_virtualbox"] != "output/web/web-virtualbox.box" || out.Fields["catalog"] != "output/web/catalog.json" {
		t.Fatalf("artifact %+v", out.Fields)
	}
	home := t.TempDir()
	for _, p := range vagrant.Providers {
		t.Run(p, func(t *testing.T) {
			if o, err := vagrantCmd(t, home, "box", "add", "--name", "single/"+p, filepath.Join(ws, boxes[p])); err != nil {
				t.Fatalf("vagrant box add: %v\n%s", err, o)
			}
		})
	}
	if o, err := vagrantCmd(t, home, "box", "add", filepath.Join(ws, "output/web/catalog.json"), "--provider", "virtualbox"); err != nil {
		t.Fatalf("vagrant box add catalog.json: %v\n%s", err, o)
	}
	if o, err := vagrantCmd(t, home, "box", "add", filepath.Join(ws, "output/web/catalog.json"), "--provider", "libvirt"); err != nil {
		t.Fatalf("vagrant box add catalog.json: %v\n%s", err, o)
	}
	list, err := vagrantCmd(t, home, "box", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"single/libvirt", "(libvirt, 0", "single/virtualbox", "(virtualbox, 0", "single/vmware_desktop", "(vmware_desktop, 0", "acme/web", "(virtualbox, 1.2.0", "(libvirt, 1.2.0"} {
		if !strings.Contains(list, want) {
			t.Errorf("vagrant box list lacks %q:\n%s", want, list)
		}
	}
	// What vagrant unpacked is what each provider reads.
	vbox := filepath.Join(home, "boxes", "acme-VAGRANTSLASH-web", "1.2.0", "virtualbox")
	if fs, _ := filepath.Glob(filepath.Join(vbox, "*", "box.ovf")); len(fs) == 1 {
		vbox = filepath.Dir(fs[0])
	}
	checkVirtualBoxBox(t, vbox)
	vmw, _ := filepath.Glob(filepath.Join(home, "boxes", "single-VAGRANTSLASH-vmware_desktop", "0", "*", "web.vmx"))
	if len(vmw) == 0 {
		vmw, _ = filepath.Glob(filepath.Join(home, "boxes", "single-VAGRANTSLASH-vmware_desktop", "0", "web.vmx"))
	}
	if len(vmw) != 1 {
		t.Fatalf("no web.vmx in the added vmware_desktop box")
	}
	text, _ := os.ReadFile(vmw[0])
	kv, err := vmware.ParseVMX(string(text))
	if err != nil || kv["scsi0:0.fileName"] != "web.vmdk" || kv["memsize"] != "768" || kv["numvcpus"] != "2" {
		t.Errorf("the box's .vmx: %v %v", kv, err)
	}
	vmdk := filepath.Join(filepath.Dir(vmw[0]), "web.vmdk")
	if raw, _ := exec.Command("qemu-img", "info", "--output=json", vmdk).CombinedOutput(); !strings.Contains(string(raw), `"create-type": "monolithicSparse"`) {
		t.Errorf("the vmware_desktop box's disk: %s", raw)
	}
	if _, err := qemuimg.Check(context.Background(), vmdk, "vmdk"); err != nil {
		t.Error(err)
	}
}

// checkVirtualBoxBox checks an added VirtualBox box against what
// VBoxManage import and Vagrant's virtualbox provider read (VirtualBox
// is not in Debian, so it cannot run here): box.ovf names the VMDK
// beside it, a SATA (AHCI) controller, an E1000 adapter with the base
// MAC the Vagrantfile sets, and the memory and CPUs; the VMDK is
// streamOptimized, as VirtualBox exports them.
func checkVirtualBoxBox(t *testing.T, dir string) {
	t.Helper()
	ovf, err := os.ReadFile(filepath.Join(dir, "box.ovf"))
	if err != nil {
		t.Fatal(err)
	}
	vf, _ := os.ReadFile(filepath.Join(dir, "Vagrantfile"))
	mac := vagrant.DeriveMAC("web")
	for _, want := range []string{
		`ovf:href="box-disk001.vmdk"`, `<vssd:VirtualSystemType>virtualbox-2.2</vssd:VirtualSystemType>`,
		`<rasd:ResourceSubType>AHCI</rasd:ResourceSubType>`, `<rasd:ResourceType>20</rasd:ResourceType>`,
		`<rasd:ResourceSubType>E1000</rasd:ResourceSubType>`, `<rasd:Address>` + mac + `</rasd:Address>`,
		`<rasd:VirtualQuantity>768</rasd:VirtualQuantity>`, `<rasd:VirtualQuantity>2</rasd:VirtualQuantity>`,
	} {
		if !strings.Contains(string(ovf), want) {
			t.Errorf("box.ovf lacks %s", want)
		}
	}
	if !strings.Contains(string(vf), `config.vm.base_mac = "`+mac+`"`) {
		t.Errorf("the Vagrantfile sets no base MAC %s:\n%s", mac, vf)
	}
	vmdk := filepath.Join(dir, "box-disk001.vmdk")
	if raw, _ := exec.Command("qemu-img", "info", "--output=json", vmdk).CombinedOutput(); !strings.Contains(string(raw), `"create-type": "streamOptimized"`) {
		t.Errorf("the virtualbox box's disk: %s", raw)
	}
	if _, err := qemuimg.Check(context.Background(), vmdk, "vmdk"); err != nil {
		t.Error(err)
	}
	var meta vagrant.Metadata
	data, _ := os.ReadFile(filepath.Join(dir, "metadata.json"))
	if json.Unmarshal(data, &meta) != nil || meta.Provider != "virtualbox" {
		t.Errorf("metadata.json: %s", data)
	}
}

// TestTheCatalogKeepsEveryVersionAndOtherBuildsProviders writes version
// 1.0.0, then 1.1.0, then 1.0.0 again from another build adding a
// provider, and vagrant reads every version.
func TestTheCatalogKeepsEveryVersionAndOtherBuildsProviders(t *testing.T) {
	ws := t.TempDir()
	in := diskposttest.Artifact(t, ws, "web", 16<<20)
	run := func(build, provider, version string) {
		env, _ := diskposttest.Env(t, ws, build)
		a := *in
		a.Build = build
		box, err := diskposttest.MustNew(t, vagrant.Def(), map[string]any{"provider": provider, "output": "boxes/" + build + "-" + version + ".box"}).PostProcess(context.Background(), env, &a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := diskposttest.MustNew(t, vagrant.CatalogDef(), map[string]any{"version": version, "box_name": "acme/web", "output": "boxes/catalog.json",
			"url": "file://" + ws + "/boxes/{file}"}).PostProcess(context.Background(), env, box); err != nil {
			t.Fatal(err)
		}
		env.Outputs.Finish(false)
	}
	run("web", "libvirt", "1.0.0")
	run("web", "libvirt", "1.1.0")
	run("web-vbox", "virtualbox", "1.0.0")
	data, _ := os.ReadFile(filepath.Join(ws, "boxes/catalog.json"))
	cat, err := vagrant.ParseCatalog(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Versions) != 2 || cat.Versions[0].Version != "1.0.0" || len(cat.Versions[0].Providers) != 2 || cat.Versions[1].Version != "1.1.0" {
		t.Fatalf("catalog %s", data)
	}
	home := t.TempDir()
	if o, err := vagrantCmd(t, home, "box", "add", filepath.Join(ws, "boxes/catalog.json"), "--box-version", "1.0.0", "--provider", "virtualbox"); err != nil {
		t.Fatalf("%v\n%s", err, o)
	}
	if o, err := vagrantCmd(t, home, "box", "add", filepath.Join(ws, "boxes/catalog.json"), "--provider", "libvirt"); err != nil || !strings.Contains(o, "1.1.0") {
		t.Fatalf("the newest libvirt box: %v\n%s", err, o)
	}
	// A file that is not a catalog is never replaced.
	os.WriteFile(filepath.Join(ws, "boxes/other.json"), []byte(`{"builds": []}`), 0o644)
	env, _ := diskposttest.Env(t, ws, "web")
	box, _ := diskposttest.MustNew(t, vagrant.Def(), map[string]any{"output": "boxes/x.box"}).PostProcess(context.Background(), env, in)
	_, err = diskposttest.MustNew(t, vagrant.CatalogDef(), map[string]any{"version": "2.0", "output": "boxes/other.json"}).PostProcess(context.Background(), env, box)
	if want := `boxes/other.json exists and is not a Vagrant catalog (json: unknown field "builds"): move it away or choose another output`; err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	_, err = diskposttest.MustNew(t, vagrant.CatalogDef(), map[string]any{"version": "2.0"}).PostProcess(context.Background(), env, in)
	if want := `build "web" (qemu) made no Vagrant box before vagrant_catalog(): put vagrant_box(provider = ...) before it in post`; err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func FuzzParseCatalog(f *testing.F) {
	f.Add([]byte(`{"name":"acme/web","versions":[{"version":"1.0.0","providers":[{"name":"libvirt","url":"file:///b.box","checksum_type":"sha256","checksum":"ab"}]}]}`))
	f.Add([]byte(`{"name":"x","versions":[]}`))
	f.Add([]byte(`{"name":"x","versions":[{"version":"1","providers":[]},{"version":"1","providers":[]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cat, err := vagrant.ParseCatalog(data)
		if err != nil {
			return
		}
		again, err := json.Marshal(cat)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := vagrant.ParseCatalog(again); err != nil {
			t.Fatalf("a parsed catalog written back does not parse: %v\n%s", err, again)
		}
	})
}
