package qemu_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemutest"
	"github.com/imgbuild/imgbuild/drivers/qemu/vm"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

func loadErr(t *testing.T, dir string) string {
	t.Helper()
	_, err := description.Load(description.Options{File: filepath.Join(dir, "images.star"), Registry: registry()})
	if err == nil {
		t.Fatal("no error")
	}
	return err.Error()
}

func TestKeywordsAreCheckedWhenTheFileIsEvaluated(t *testing.T) {
	for _, tc := range []struct{ call, want string }{
		{`qemu(name = "a", disk = "missing.qcow2")`, `for parameter disk: "missing.qcow2" does not exist (looked for `},
		{`qemu(name = "a")`, `for parameter disk: is not set, and neither is iso_url: set disk (an image to boot, such as base.disk) or iso_url (an installer ISO to install onto a blank disk)`},
		{`qemu(name = "a", disk = "d.img", iso_url = "d.img", iso_checksum = "none")`, `for parameter iso_url: is set with disk: a build boots an image (disk) or installs from an ISO onto a blank disk (iso_url), not both`},
		{`qemu(name = "a", iso_url = "d.img")`, `for parameter iso_checksum: is required with iso_url: "sha256:<hex>", "file:SHA256SUMS" (or "none" to skip the check)`},
		{`qemu(name = "a", iso_url = "d.img", iso_checksum = "sha256:abc")`, `for parameter iso_checksum: `},
		{`qemu(name = "a", iso_url = "d.img", iso_checksum = "none", boot_command = ["linux <wait5x> ro<enter>"])`, `for parameter boot_command: at character 7: <wait5x> is not a wait: write <wait> (one second), <wait5> (seconds) or <wait1m30s> (a duration)`},
		{`qemu(name = "a", iso_url = "d.img", iso_checksum = "none", boot_command = ["<esc>", "linux {http_url}/ks<entr>"])`, `for parameter boot_command: element 1, character 20: unknown key <entr> (did you mean <enter>?)`},
		{`qemu(name = "a", iso_url = "d.img", iso_checksum = "none", boot_command = ["ks={http_url}/ks.cfg"])`, `for parameter boot_command: uses {http_url} but no HTTP server runs: set http_directory or http_content`},
		{`qemu(name = "a", iso_url = "d.img", iso_checksum = "none", http_directory = "www")`, `for parameter http_directory: "www" does not exist`},
		{`qemu(name = "a", iso_url = "d.img", iso_checksum = "none", disk_interface = "scsi")`, `for parameter disk_interface: "scsi" is not one of "virtio", "virtio-scsi", "ide", "sata"`},
		{`qemu(name = "a", iso_url = "d.img", iso_checksum = "none", http_port_min = 9000, http_port_max = 8000)`, `for parameter http_port_max: 8000 is below http_port_min (9000)`},
		{`qemu(name = "a", iso_url = "d.img", iso_checksum = "none", kernel = "d.img")`, `for parameter kernel: is set with iso_url: the machine boots the ISO's boot loader`},
		{`qemu(name = "a", disk = "d.img", iso_checksum = "none")`, `for parameter iso_checksum: is set but iso_url is not`},
		{`qemu(name = "a", disk = "d.img", vm_name = "out/x.qcow2")`, `for parameter vm_name: "out/x.qcow2" is not a file name`},
		{`qemu(name = "a", disk = "d.img", initrd = "d.img")`, `for parameter initrd: is set but kernel is not: an initrd is booted with a kernel (kernel = base.kernel)`},
		{`qemu(name = "a", disk = "d.img", append = "quiet")`, `for parameter append: is set but kernel is not`},
		{`qemu(name = "a", disk = "d.img", memory = 16)`, `for parameter memory: 16 MiB is too little to boot (at least 64; Debian wants 512 or more)`},
		{`qemu(name = "a", disk = "d.img", cpus = 0)`, `for parameter cpus: 0 is not between 1 and 64`},
		{`qemu(name = "a", disk = "d.img", accelerator = "hvf")`, `for parameter accelerator: "hvf" is not one of "auto", "kvm", "tcg"`},
		{`qemu(name = "a", disk = "d.img", format = "vdi")`, `for parameter format: "vdi" is not one of "qcow2", "raw", "vmdk"`},
		{`qemu(name = "a", disk = "d.img", format = "raw", compress = True)`, `for parameter compress: compresses qcow2 output, but format is "raw"`},
		{`qemu(name = "a", disk = "d.img", disk_size = "big")`, `for parameter disk_size: "big" is not a size`},
		{`qemu(name = "a", disk = "d.img", ssh_host = "10.0.0.1")`, `for parameter ssh_host: cannot be set: qemu() reaches its machine through a port of 127.0.0.1 forwarded to the machine's ssh_port`},
		{`qemu(name = "a", disk = "d.img", ssh_timout = "1m")`, `unexpected keyword argument "ssh_timout" (did you mean "ssh_timeout"?)`},
	} {
		dir := testkit.Workspace(t, map[string]string{"images.star": tc.call, "d.img": "x"})
		if got := loadErr(t, dir); !strings.Contains(got, tc.want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.call, got, tc.want)
		}
	}
}

// TestBadDisksAreNamedWithWhatIsWrong runs builds whose disk exists when
// the description is evaluated but is not a usable image, or is gone by
// the time the build runs.
func TestBadDisksAreNamedWithWhatIsWrong(t *testing.T) {
	qemutest.RequireQEMU(t)
	// A qcow2 whose header says its clusters are 2^(2^32-1) bytes.
	tmp := filepath.Join(t.TempDir(), "c.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", tmp, "1G").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	data, _ := os.ReadFile(tmp)
	copy(data[20:24], "\xff\xff\xff\xff")
	corrupt := string(data)
	for _, tc := range []struct {
		name, file, content, want string
		remove                    bool
	}{
		{"text file", "notes.txt", "not a disk\n", "is not a disk image qemu-img understands: qemu-img reads it only as raw data, and its 11 bytes are not a whole number of 512-byte sectors (a text file, an archive or a truncated download?)", false},
		{"sectors of zeros", "zeros.img", strings.Repeat("\x00", 4096), "is not a disk image qemu-img understands: qemu-img reads it only as raw data, and it has no partition table or file system that a machine could boot from", false},
		{"empty", "empty.img", "", "is not a disk image qemu-img understands: it is empty", false},
		{"corrupt qcow2", "broken.qcow2", corrupt, "is not a disk image qemu-img understands: Unsupported cluster size: 2^4294967295", false},
		{"gone", "gone.qcow2", "x", "does not exist: check the path, or that the build making it ran", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testkit.Workspace(t, map[string]string{
				"images.star": `qemu(name = "tiny", disk = "` + tc.file + `", provisioners = [shell(inline = ["true"])])`,
				tc.file:       tc.content,
			})
			d := load(t, dir)
			if tc.remove {
				// Evaluated while it exists; gone when the build runs.
				os.Remove(filepath.Join(dir, tc.file))
			}
			r := runLoaded(t, context.Background(), d, nil)
			msg := r.Err(t, "tiny")
			want := "inspect disk: disk " + filepath.Join(dir, tc.file) + " " + tc.want
			if !strings.Contains(msg, want) {
				t.Errorf("got  %s\nwant %s", msg, want)
			}
			r.nothingLeft(t)
		})
	}
}

func TestAMissingKernelIsNamed(t *testing.T) {
	qemutest.RequireQEMU(t)
	g := qemutest.TinyGuest(t)
	dir := testkit.Workspace(t, map[string]string{"images.star": `
base = local(name = "base", provisioners = [shell(inline = ["echo no kernel here"])])
qemu(name = "tiny", disk = "tiny/disk.raw", kernel = base.id + "/vmlinuz", provisioners = [shell(inline = ["true"])])
`})
	g.Into(t, dir)
	r := runIn(t, context.Background(), dir, nil)
	msg := r.Err(t, "tiny")
	want := "inspect disk: kernel " + filepath.Join(dir, "output/base/vmlinuz") + " does not exist: check the path, or that the build making it ran"
	if !strings.Contains(msg, want) {
		t.Errorf("got  %s\nwant %s", msg, want)
	}
}

func TestAcceleratorAutoIsKVMOnlyWhenItCanWork(t *testing.T) {
	for cpuinfo, want := range map[string]string{
		"processor: 0\nflags\t\t: fpu vme de pse vmx sse\nprocessor: 1\nflags\t\t: fpu vmx\n": "vmx",
		"processor: 0\nflags\t\t: fpu svm\n":                                                  "svm",
		"processor: 0\nflags\t\t: fpu hypervisor sse\n":                                       "",
		"processor: 0\nflags\t\t: vmx\nprocessor: 1\nflags\t\t: sse\n":                        "",
		"": "",
	} {
		if got := vm.VirtFlag(cpuinfo); got != want {
			t.Errorf("VirtFlag(%q) = %q, want %q", cpuinfo, got, want)
		}
	}
	// On this machine.
	a, err := vm.ChooseAccel("auto")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile("/proc/cpuinfo")
	if vm.VirtFlag(string(data)) == "" && a.Name != "tcg" {
		t.Errorf("no vmx/svm here, yet auto chose %s (%s)", a.Name, a.Reason)
	}
	t.Logf("auto: %s (%s)", a.Name, a.Reason)
	if a.Name == "tcg" {
		_, err := vm.ChooseAccel("kvm")
		if err == nil || !strings.Contains(err.Error(), `accelerator = "kvm", but KVM cannot work here: `) || !strings.Contains(err.Error(), `use accelerator = "auto" or "tcg"`) {
			t.Errorf("kvm where it cannot work: %v", err)
		}
	}
}

func TestTheCommandLine(t *testing.T) {
	spec := &vm.Spec{
		Name: "web", Disk: "/w/overlay,1.qcow2", Format: "qcow2", Kernel: "/k", Initrd: "/i", Append: "root=/dev/vda console=ttyS0",
		Memory: 512, CPUs: 2, Accel: "tcg", Machine: "q35", HostPort: 40000, GuestPort: 22,
		Credentials:  map[string]string{"ssh.authorized_keys.root": "ssh-ed25519 AAAA imgbuild-web,x"},
		SMBIOSSerial: "ds=nocloud;s=http://10.0.2.2:4000/", Console: "/w/console.log", Extra: []string{"-device", "x"},
	}
	args, err := spec.Args()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(args, " ")
	testkit.WantIn(t, "command line", got,
		"-name imgbuild-web,process=imgbuild-web",
		// Two CPUs under TCG: -accel names the accelerator, with a thread
		// per CPU, and -machine does not (QEMU refuses both).
		"-machine q35 -m 512 -smp 2",
		"-serial file:/w/console.log",
		"-drive if=virtio,file=/w/overlay,,1.qcow2,format=qcow2",
		"-netdev user,id=net0,hostfwd=tcp:127.0.0.1:40000-:22",
		"-smbios type=11,value=io.systemd.credential:ssh.authorized_keys.root=ssh-ed25519 AAAA imgbuild-web,,x",
		"-smbios type=1,serial=ds=nocloud;s=http://10.0.2.2:4000/",
		"-kernel /k -append root=/dev/vda console=ttyS0 -initrd /i",
		"-accel tcg,thread=multi",
		"-device x",
	)
	if !strings.HasSuffix(got, "-device x") {
		t.Errorf("qemu_args are not last: %s", got)
	}
	spec.Credentials = map[string]string{"a=b": "x"}
	if _, err := spec.Args(); err == nil {
		t.Error("a credential name with = was accepted")
	}
}

func TestTheQEMUProgramIsThere(t *testing.T) {
	qemutest.RequireQEMU(t)
	out, err := exec.Command(vm.Program, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", strings.SplitN(string(out), "\n", 2)[0])
}

func TestMissingQEMUIsNamedWithItsPackages(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `qemu(name = "tiny", disk = "d.img")`, "d.img": "x"})
	d := load(t, dir)
	t.Setenv("PATH", t.TempDir())
	r := runLoaded(t, context.Background(), d, nil)
	want := "qemu() needs qemu-system-x86_64 and qemu-img, which are not installed: apt-get install qemu-system-x86 qemu-utils"
	if msg := r.Err(t, "tiny"); msg != want {
		t.Errorf("got  %s\nwant %s", msg, want)
	}
	if steps := strings.Join(r.Rec.StepTimes(), ", "); steps != "" {
		t.Errorf("steps ran: %s", steps)
	}
}
