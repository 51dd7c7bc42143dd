package e2e

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/cfgtool/cfgtest"
	"github.com/imgbuild/imgbuild/drivers/chroot/chroottest"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemutest"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// playbookFiles are what examples/ansible/playbook.yml leaves on a
// machine, with what each must hold ("" for a file whose content is only
// compared between the two images).
var playbookFiles = []struct{ path, want string }{
	{"/usr/sbin/cron", ""},
	{"/etc/systemd/system/multi-user.target.wants/cron.service", "/lib/systemd/system/cron.service"},
	{"/var/lib/report", ""},
	{"/usr/local/bin/report", ". /etc/report.conf"},
	{"/etc/report.conf", "title=\"a machine built by imgbuild\"\ndir=\"/var/lib/report\"\nos=\"Debian 12"},
	{"/etc/cron.d/report", "*/15 * * * * root /usr/local/bin/report\n"},
}

// TestTheAnsibleExampleBuildsTheSameMachineAsARootfsAndAQEMUImage runs
// examples/ansible.star: one debootstrap (report-base), its tree reused
// from the checkpoint cache by report-rootfs, where ansible() reaches the
// chroot through the adapter, while report-qemu boots report-base's disk
// (TCG here) and ansible() reaches the live machine, which has python3,
// over SSH through the adapter. The test reads the playbook's files (a
// package, a script, two templated configs, a service enabled) back from
// both output disks and wants them the same.
func TestTheAnsibleExampleBuildsTheSameMachineAsARootfsAndAQEMUImage(t *testing.T) {
	// 15-20 minutes under TCG (the booted machine's playbook alone takes
	// 7): more than the suite's time allows beside everything else.
	testkit.OptIn(t, "IMGBUILD_E2E_ANSIBLE", "examples/ansible.star end to end (make e2e-ansible runs it)")
	requireDebootstrap(t)
	qemutest.RequireQEMU(t)
	testkit.RequireProgram(t, "debugfs", "e2fsprogs")
	dir := t.TempDir()
	examples := filepath.Join(repoRoot(), "examples")
	testkit.CopyTree(t, filepath.Join(examples, "ansible"), filepath.Join(dir, "ansible"), nil)
	testkit.WriteFile(t, filepath.Join(dir, "ansible.star"), cfgtest.ReadFile(t, filepath.Join(examples, "ansible.star")))
	t.Setenv("IMGBUILD_VAR_package_cache", cfgtest.PackageCache(t, "cfgmgmt"))
	if os.Getenv("IMGBUILD_CHECKPOINTS") == "" {
		// A checkpoint cache of the test's own: report-base debootstraps
		// and report-rootfs reuses its tree, every run.
		t.Setenv("IMGBUILD_CHECKPOINTS", filepath.Join(t.TempDir(), "checkpoints"))
	}

	start := time.Now()
	r := cfgtest.Run(t, dir, "ansible.star", nil)
	r.OK(t)
	t.Logf("examples/ansible.star built in %s:\n%s", time.Since(start).Round(time.Second), r.StepTimes())

	said := map[string]string{}
	for _, e := range r.Rec.Of(event.Message) {
		said[e.Build] += e.Message + "\n"
	}
	if n := strings.Count(said["report-base"]+said["report-rootfs"], "running debootstrap "); n > 1 {
		t.Errorf("debootstrap ran %d times; report-rootfs should reuse report-base's tree", n)
	}
	cfgtest.WantIn(t, "report-rootfs's messages", said["report-rootfs"], "debootstrap: reused checkpoint", "ansible: playbook.yml done in", "through imgbuild's SSH adapter")
	cfgtest.WantIn(t, "report-qemu's messages", said["report-qemu"], "ansible: playbook.yml done in", "through imgbuild's SSH adapter")

	rootfsDisk := ext4Of(t, filepath.Join(dir, "output/report-rootfs/report-rootfs.qcow2"))
	qemuDisk := ext4Of(t, filepath.Join(dir, "output/report-qemu/report-qemu.qcow2"))
	for _, f := range playbookFiles {
		inRootfs, inQEMU := rootfsDisk.describe(t, f.path), qemuDisk.describe(t, f.path)
		if inRootfs != inQEMU {
			t.Errorf("%s differs:\nrootfs image: %s\nqemu image:   %s", f.path, inRootfs, inQEMU)
		}
		// describe shows a small file's content quoted, so the wanted text is
		// looked for quoted the same way.
		if q := strconv.Quote(f.want); !strings.Contains(inRootfs, q[1:len(q)-1]) {
			t.Errorf("%s in the rootfs image = %s, want it to hold %q", f.path, inRootfs, f.want)
		}
	}
	// Neither image keeps Ansible's temporary files.
	for _, d := range []*ext4Image{rootfsDisk, qemuDisk} {
		if ls := d.debugfs(t, "ls -p /root/.ansible/tmp"); strings.Contains(ls, "ansible-tmp-") {
			t.Errorf("%s keeps Ansible's temporary files: %s", d.from, ls)
		}
	}

	mine := r.Temp + string(filepath.Separator)
	testkit.Poll(testkit.WaitTimeout, func() bool { return len(chroottest.ProcessesNamed(mine)) == 0 })
	if p := append(chroottest.ProcessesNamed(mine), chroottest.ProcessesIn(r.Temp)...); len(p) > 0 {
		t.Errorf("left running: %v", p)
	}
}

// ext4Image is the ext4 file system of an output disk, read with debugfs.
type ext4Image struct {
	from string // the disk
	raw  string // a raw copy of it
}

// ext4Of makes a raw copy of disk (qcow2) to read with debugfs.
func ext4Of(t *testing.T, disk string) *ext4Image {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "disk.raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", disk, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert %s: %v: %s", disk, err, out)
	}
	return &ext4Image{from: disk, raw: raw}
}

// debugfs runs one debugfs request and returns what it printed.
func (d *ext4Image) debugfs(t *testing.T, request string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", request, d.raw).Output()
	if err != nil {
		t.Fatalf("debugfs -R %q %s: %v", request, d.from, err)
	}
	return string(out)
}

var (
	statType  = regexp.MustCompile(`Type: (\w+)`)
	statMode  = regexp.MustCompile(`Mode:\s+(\d+)`)
	statOwner = regexp.MustCompile(`User:\s+(\d+)\s+Group:\s+(\d+)`)
	statLink  = regexp.MustCompile(`Fast link dest: "(.*)"`)
)

// describe is a file's type, mode, owner and content (a symlink's
// target): what two images must agree on.
func (d *ext4Image) describe(t *testing.T, path string) string {
	t.Helper()
	stat := d.debugfs(t, "stat "+path)
	typ := statType.FindStringSubmatch(stat)
	if typ == nil {
		return "missing"
	}
	s := typ[1]
	if m := statMode.FindStringSubmatch(stat); m != nil {
		s += " mode " + m[1]
	}
	if o := statOwner.FindStringSubmatch(stat); o != nil {
		s += " owner " + o[1] + ":" + o[2]
	}
	switch typ[1] {
	case "symlink":
		if l := statLink.FindStringSubmatch(stat); l != nil {
			s += " → " + l[1]
		}
	case "regular":
		if data := d.debugfs(t, "cat "+path); len(data) < 4096 {
			s += fmt.Sprintf(" %q", data)
		} else {
			s += fmt.Sprintf(" sha256:%x", sha256.Sum256([]byte(data)))
		}
	}
	return s
}
