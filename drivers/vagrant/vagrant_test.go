package vagrant_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/all"
	"github.com/imgbuild/imgbuild/drivers/diskpost/diskposttest"
	"github.com/imgbuild/imgbuild/drivers/vagrant"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

// qcow2 makes a 3 GiB qcow2 in ws with some data in it.
func qcow2(t *testing.T, ws, name string) string {
	t.Helper()
	p := filepath.Join(ws, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", p, "3G").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return p
}

// boxMembers reads a box (tar.gz or tar): member name → content.
func boxMembers(t *testing.T, p string) (map[string][]byte, []string) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if zr, err := gzip.NewReader(f); err == nil {
		r = zr
	} else {
		f.Seek(0, 0)
	}
	tr := tar.NewReader(r)
	out := map[string][]byte{}
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, order
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		out[h.Name] = data
		order = append(order, h.Name)
	}
}

func env(ws string) (*engine.PostEnv, *testkit.Recorder) {
	ui, rec := testkit.NewUI("web", "qemu")
	e := &engine.PostEnv{UI: ui, Build: "web", Driver: "qemu", Workspace: ws}
	e.OutputSet()
	return e, rec
}

func TestABoxHoldsTheDiskMetadataAndAVagrantfileThatBootsTheKernel(t *testing.T) {
	testkit.RequireProgram(t, "qemu-img", "qemu-utils")
	ws := t.TempDir()
	disk := qcow2(t, ws, "output/web/web.qcow2")
	os.WriteFile(filepath.Join(ws, "output/web/vmlinuz"), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(ws, "output/web/initrd.img"), []byte("initrd"), 0o644)
	in := &engine.Artifact{Build: "web", ID: "output/web/web.qcow2", Files: []string{"output/web/initrd.img", "output/web/vmlinuz", "output/web/web.qcow2"},
		Fields: map[string]any{"disk": "output/web/web.qcow2", "format": "qcow2", "kernel": "output/web/vmlinuz", "initrd": "output/web/initrd.img",
			"append": `root=UUID=1234 ro console=ttyS0,115200n8 "quoted" #{not_ruby}`}}
	e, events := env(ws)
	out, err := diskposttest.MustNew(t, vagrant.Def(), nil).PostProcess(context.Background(), e, in)
	if err != nil {
		t.Fatal(err)
	}
	box := filepath.Join(ws, "output/web/web-libvirt.box")
	if out.ID != "output/web/web-libvirt.box" || out.Fields["box"] != "output/web/web-libvirt.box" || out.Fields["provider"] != "libvirt" || out.Fields["disk"] != "output/web/web.qcow2" {
		t.Errorf("artifact: %+v", out)
	}
	if got := strings.Join(out.Files, " "); got != "output/web/initrd.img output/web/vmlinuz output/web/web.qcow2 output/web/web-libvirt.box" {
		t.Errorf("files: %s", got)
	}
	members, order := boxMembers(t, box)
	if got := strings.Join(order, " "); got != "box.img vmlinuz initrd.img metadata.json Vagrantfile" {
		t.Errorf("members: %s", got)
	}
	want, _ := os.ReadFile(disk)
	if sha256.Sum256(members["box.img"]) != sha256.Sum256(want) {
		t.Error("box.img is not the disk")
	}
	var meta vagrant.Metadata
	if err := json.Unmarshal(members["metadata.json"], &meta); err != nil {
		t.Fatal(err)
	}
	if meta != (vagrant.Metadata{Provider: "libvirt", Format: "qcow2", VirtualSize: 3}) {
		t.Errorf("metadata: %+v", meta)
	}
	vf := string(members["Vagrantfile"])
	for _, line := range []string{
		`config.vm.provider :libvirt do |libvirt|`,
		`libvirt.memory = 1024`,
		`libvirt.kernel = File.join(File.dirname(__FILE__), "vmlinuz")`,
		`libvirt.initrd = File.join(File.dirname(__FILE__), "initrd.img")`,
		`libvirt.cmd_line = "root=UUID=1234 ro console=ttyS0,115200n8 \"quoted\" \#{not_ruby}"`,
	} {
		if !strings.Contains(vf, line) {
			t.Errorf("Vagrantfile lacks %s:\n%s", line, vf)
		}
	}
	if string(members["vmlinuz"]) != "kernel" || string(members["initrd.img"]) != "initrd" {
		t.Error("kernel or initrd not in the box")
	}
	t.Run("the Vagrantfile is valid Ruby", func(t *testing.T) {
		ruby := testkit.RequireProgram(t, "ruby", "ruby")
		if out, err := exec.Command(ruby, "-c", "-e", vf).CombinedOutput(); err != nil {
			t.Errorf("ruby -c: %v: %s", err, out)
		}
	})
	made := false
	for _, ev := range events.Events() {
		if ev.Type == event.Message && strings.HasPrefix(ev.Message, "Vagrant box output/web/web-libvirt.box made in") {
			made = true
		}
	}
	if !made {
		t.Errorf("no message: %v", events.Events())
	}
	if err := e.Outputs.Finish(false); err != nil {
		t.Fatal(err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(ws, "output/web/.*")); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}

	// Again, as a later run would: the build's own box is replaced
	// without asking.
	e, _ = env(ws)
	if _, err = diskposttest.MustNew(t, vagrant.Def(), nil).PostProcess(context.Background(), e, in); err != nil {
		t.Errorf("the build's own earlier box: %v", err)
	}
	e.Outputs.Finish(false)
	// A file imgbuild did not make is refused, force or not.
	os.MkdirAll(filepath.Join(ws, "boxes"), 0o755)
	os.WriteFile(filepath.Join(ws, "boxes/mine.box"), []byte("mine"), 0o644)
	_, err = diskposttest.MustNew(t, vagrant.Def(), map[string]any{"output": "boxes/mine.box", "force": true}).PostProcess(context.Background(), e, in)
	if err == nil || err.Error() != "boxes/mine.box exists and imgbuild did not make it: move it away or choose another output (force replaces only what imgbuild made)" {
		t.Errorf("a file imgbuild did not make: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "boxes/mine.box")); string(b) != "mine" {
		t.Error("the user's file was replaced")
	}
	// Without the input's files, uncompressed, elsewhere.
	out, err = diskposttest.MustNew(t, vagrant.Def(), map[string]any{"keep_input_artifact": false, "compression": "none", "output": "boxes/web.box"}).PostProcess(context.Background(), e, in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(out.Files, " ") != "boxes/web.box" {
		t.Errorf("files without the input's: %v", out.Files)
	}
	if data, _ := os.ReadFile(filepath.Join(ws, "boxes/web.box")); !bytes.Contains(data[:512], []byte("box.img")) {
		t.Error("compression = \"none\" did not write a plain tar")
	}
}

func TestABoxWithoutKernelBootsThroughItsFirmware(t *testing.T) {
	testkit.RequireProgram(t, "qemu-img", "qemu-utils")
	ws := t.TempDir()
	qcow2(t, ws, "d.qcow2")
	in := &engine.Artifact{Build: "web", Fields: map[string]any{"disk": "d.qcow2", "format": "qcow2", "kernel": "", "initrd": ""}}
	e, _ := env(ws)
	if _, err := diskposttest.MustNew(t, vagrant.Def(), map[string]any{"memory": 2048, "cpus": 2}).PostProcess(context.Background(), e, in); err != nil {
		t.Fatal(err)
	}
	members, order := boxMembers(t, filepath.Join(ws, "output/web/web-libvirt.box"))
	if got := strings.Join(order, " "); got != "box.img metadata.json Vagrantfile" {
		t.Errorf("members: %s", got)
	}
	vf := string(members["Vagrantfile"])
	if strings.Contains(vf, "kernel") || !strings.Contains(vf, "libvirt.memory = 2048") || !strings.Contains(vf, "libvirt.cpus = 2") {
		t.Errorf("Vagrantfile:\n%s", vf)
	}
}

func TestWhatIsNotABoxableDiskIsNamed(t *testing.T) {
	testkit.RequireProgram(t, "qemu-img", "qemu-utils")
	ws := t.TempDir()
	qcow2(t, ws, "base.qcow2")
	overlay := filepath.Join(ws, "overlay.qcow2")
	exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", filepath.Join(ws, "base.qcow2"), overlay).Run()
	os.WriteFile(filepath.Join(ws, "fake.qcow2"), []byte("not a disk\n"), 0o644)
	e, _ := env(ws)
	for _, tc := range []struct {
		fields map[string]any
		want   string
	}{
		{map[string]any{"directory": "output/x"}, `build "web" () made an artifact with no files, which is not a disk: vagrant_box() converts the disk of a qemu() or rootfs() build`},
		{map[string]any{"disk": "overlay.qcow2", "format": "qcow2"}, `the disk overlay.qcow2 of build "web" has a backing file (` + filepath.Join(ws, "base.qcow2") + "): vagrant_box() needs the whole disk"},
		{map[string]any{"disk": "fake.qcow2", "format": "qcow2"}, "disk " + filepath.Join(ws, "fake.qcow2") + " is not a disk image qemu-img understands"},
		{map[string]any{"disk": "gone.qcow2", "format": "qcow2"}, "disk " + filepath.Join(ws, "gone.qcow2") + " does not exist"},
	} {
		_, err := diskposttest.MustNew(t, vagrant.Def(), nil).PostProcess(context.Background(), e, &engine.Artifact{Build: "web", Fields: tc.fields})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v:\n got %v\nwant %s", tc.fields, err, tc.want)
		}
	}
	if entries, _ := filepath.Glob(filepath.Join(ws, "output/*/*")); len(entries) > 0 {
		t.Errorf("left: %v", entries)
	}
}

func TestKeywordsAreChecked(t *testing.T) {
	r := engine.NewRegistry()
	all.Register(r)
	for call, want := range map[string]string{
		`vagrant_box(compression_level = 0)`:                              "for parameter compression_level: 0 is not between 1 (fast) and 9 (small)",
		`vagrant_box(output = "web.tar.gz")`:                              `for parameter output: "web.tar.gz" should end in .box, the name Vagrant expects`,
		`vagrant_box(compression = "xz")`:                                 `for parameter compression: "xz" is not one of "gzip", "none"`,
		`vagrant_box(vagrantfile = "nope")`:                               `for parameter vagrantfile: "nope" does not exist`,
		`vagrant_box(provider = "virtualbx")`:                             `for parameter provider: "virtualbx" is not one of "libvirt", "virtualbox", "vmware_desktop" (did you mean "virtualbox"?)`,
		`vagrant_box(base_mac = "0800271234")`:                            `for parameter base_mac: is for provider = "virtualbox" (this box is for libvirt)`,
		`vagrant_box(provider = "virtualbox", base_mac = "090027000001")`: `for parameter base_mac: "090027000001" is a multicast address`,
		`vagrant_catalog(version = "v1")`:                                 `for parameter version: "v1" is not a box version: numbers joined by dots, such as "1.2.0"`,
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "images.star"), []byte(`local(name = "a", post = [`+call+`])`), 0o644)
		_, err := description.Load(description.Options{File: filepath.Join(dir, "images.star"), Registry: r})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %s", call, err, want)
		}
	}
}
