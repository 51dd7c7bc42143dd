package qemu_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/chroot/chroottest"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemutest"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

func TestProvisioningFileTransferAndACleanShutdown(t *testing.T) {
	dir := tinyWorkspace(t, tinyQemu(map[string]string{"provisioners": `[
        shell(inline = [
            "echo provisioned > /mnt/provisioned",
            "cat /mnt/hello",
            "wc -l < /root/.ssh/authorized_keys",
        ]),
        file(content = "uploaded\n", destination = "/mnt/uploaded"),
        file(source = "files/", destination = "/mnt/tree"),
        file(direction = "download", source = "/mnt/hello", destination = "downloaded/hello"),
    ]`}))
	os.MkdirAll(filepath.Join(dir, "files/sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "files/sub/a.txt"), []byte("A\n"), 0o600)
	before, err := qemuimg.SHA256(context.Background(), filepath.Join(dir, "tiny/disk.raw"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := runIn(t, context.Background(), dir, nil)
	art := r.ok(t, "tiny")
	t.Logf("built in %s: %s", time.Since(start).Round(100*time.Millisecond), strings.Join(r.Rec.StepTimes(), ", "))
	if os.Getenv("QEMU_TEST_VERBOSE") != "" {
		t.Log(r.Rec.Log())
	}

	text := r.Rec.Log()
	for _, want := range []string{qemutest.HelloFile, "the machine powered off in", "accelerator tcg"} {
		if !strings.Contains(text, strings.TrimSpace(want)) {
			t.Errorf("the log lacks %q:\n%s", want, text)
		}
	}
	out := filepath.Join(dir, art.Fields["disk"].(string))
	if art.Fields["disk"] != "output/tiny/tiny.qcow2" || art.Fields["format"] != "qcow2" {
		t.Errorf("fields: %v", art.Fields)
	}
	if got := guestFile(t, out, "/provisioned"); got != "provisioned\n" {
		t.Errorf("/provisioned on the output disk: %q", got)
	}
	if got := guestFile(t, out, "/uploaded"); got != "uploaded\n" {
		t.Errorf("/uploaded on the output disk: %q", got)
	}
	if got := guestFile(t, out, "/tree/sub/a.txt"); got != "A\n" {
		t.Errorf("/tree/sub/a.txt on the output disk: %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "downloaded/hello")); string(b) != qemutest.HelloFile {
		t.Errorf("downloaded: %q", b)
	}
	after, _ := qemuimg.SHA256(context.Background(), filepath.Join(dir, "tiny/disk.raw"))
	if before != after {
		t.Error("the input disk was written to")
	}
	sum, _ := qemuimg.SHA256(context.Background(), out)
	if art.Fields["checksum"] != "sha256:"+sum {
		t.Errorf("checksum field %v, file's sha256:%s", art.Fields["checksum"], sum)
	}
	// The tiny guest has no /vmlinuz: the kernel it booted is kept.
	if art.Fields["kernel"] != "output/tiny/vmlinuz" || art.Fields["initrd"] != "output/tiny/initrd.img" {
		t.Errorf("kernel fields: %v %v", art.Fields["kernel"], art.Fields["initrd"])
	}
	if got := strings.Join(art.Files, " "); got != "output/tiny/initrd.img output/tiny/tiny.qcow2 output/tiny/vmlinuz" {
		t.Errorf("files: %s", got)
	}
	r.nothingLeft(t)
}

func TestAForcedShutdownWarnsAndStillMakesTheImage(t *testing.T) {
	dir := tinyWorkspace(t, tinyQemu(map[string]string{
		"shutdown_command": `"true"`,
		"shutdown_timeout": `"3s"`,
		"format":           `"raw"`,
		"provisioners":     `[shell(inline = ["echo forced > /mnt/forced"])]`,
	}))
	r := runIn(t, context.Background(), dir, nil)
	art := r.ok(t, "tiny")
	warnings := strings.Join(r.Rec.Messages(event.Warning), "\n")
	if !strings.Contains(warnings, `the machine did not power off within shutdown_timeout (3s) after "true": stopping it by force (its disks were synced first)`) {
		t.Errorf("warnings:\n%s", warnings)
	}
	// sync ran first: what the provisioner wrote is on the disk.
	if got := guestFile(t, filepath.Join(dir, art.Fields["disk"].(string)), "/forced"); got != "forced\n" {
		t.Errorf("/forced: %q", got)
	}
	if art.Fields["format"] != "raw" || !strings.HasSuffix(art.Fields["disk"].(string), "tiny.raw") {
		t.Errorf("fields: %v", art.Fields)
	}
	r.nothingLeft(t)
}

func TestAQemuKilledMidBuildFailsAtOnceAndLeavesNothing(t *testing.T) {
	dir := tinyWorkspace(t, tinyQemu(map[string]string{"provisioners": `[shell(inline = ["echo about to sleep", "sleep 600"])]`}))
	var killed time.Time
	r := runIn(t, context.Background(), dir, func(ev event.Event) {
		if ev.Type == event.Output && strings.Contains(ev.Message, "about to sleep") && killed.IsZero() {
			for _, p := range chroottest.ProcessesNamed("process=imgbuild-tiny") {
				pid, _ := strconv.Atoi(strings.Fields(p)[0])
				syscall.Kill(pid, syscall.SIGKILL)
				killed = time.Now()
			}
		}
	})
	msg := r.Err(t, "tiny")
	if killed.IsZero() {
		t.Fatal("never killed qemu")
	}
	if d := time.Since(killed); d > 20*time.Second {
		t.Errorf("the build took %s to notice", d)
	}
	testkit.WantIn(t, "error", msg, "provision: the machine stopped: qemu was killed by signal 9 (killed); the last lines of the serial console:", "Pubkey auth succeeded for 'root'")
	r.nothingLeft(t)
	if entries, _ := os.ReadDir(filepath.Join(dir, "output")); len(entries) > 0 {
		t.Errorf("outputs of a failed build: %v", entries)
	}
}

func TestCancellingAtEveryStepLeavesNothing(t *testing.T) {
	steps := []string{"check output directory", "inspect disk", "create overlay", "start machine", "wait for SSH", "provision", "read kernel", "shut down", "convert"}
	total := 0
	for _, s := range steps {
		t.Run(strings.ReplaceAll(s, " ", "_"), func(t *testing.T) {
			provisioner := `[shell(inline = ["echo provisioning", "sleep 600"])]`
			if s == "read kernel" || s == "shut down" || s == "convert" {
				// Past provisioning: a provisioner that ends.
				provisioner = `[shell(inline = ["echo provisioning"])]`
			}
			dir := tinyWorkspace(t, tinyQemu(map[string]string{"provisioners": provisioner}))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := runIn(t, ctx, dir, func(ev event.Event) {
				switch {
				case s == "provision" && ev.Type == event.Output && strings.Contains(ev.Message, "provisioning"):
					cancel()
				case s != "provision" && ev.Type == event.StepStarted && ev.Step == s:
					cancel()
				}
			})
			res := r.Sum.Result("tiny")
			if res.Status != event.Cancelled {
				t.Fatalf("status %s (%v)\n%s", res.Status, res.Err, r.Rec.Log())
			}
			left := r.leftovers()
			if entries, _ := os.ReadDir(filepath.Join(dir, "output")); len(entries) > 0 {
				left = append(left, "output directory")
			}
			total += len(left)
			if len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
	t.Logf("cancelled at %d steps: %d things left", len(steps), total)
}

func TestSSHNeverComingUpShowsTheConsole(t *testing.T) {
	dir := tinyWorkspace(t, tinyQemu(map[string]string{
		"ssh_port": `2222`,
		// Long enough for the tiny guest to boot under TCG on a busy
		// machine, so that its console has something to show.
		"ssh_timeout":  `"45s"`,
		"provisioners": `[shell(inline = ["true"])]`,
	}))
	r := runIn(t, context.Background(), dir, nil)
	msg := r.Err(t, "tiny")
	testkit.WantIn(t, "error", msg,
		"wait for SSH: SSH did not come up within ssh_timeout (45s): nothing answered SSH on 127.0.0.1:",
		"forwarded to the machine's port 2222 (last attempt: nothing answers on the machine's port yet",
		"qemu is still running. The last lines of the serial console:\n",
		"  tiny: starting dropbear",
		"Does the image start an SSH server on port 2222 and take an address by DHCP?",
	)
	r.nothingLeft(t)
}

func TestACloudInitSeedGivesTheKeyToo(t *testing.T) {
	dir := tinyWorkspace(t, tinyQemu(map[string]string{
		"cloud_init":       `True`,
		"shutdown_command": `""`,
		"provisioners":     `[shell(inline = ["wc -l < /root/.ssh/authorized_keys", "grep -c imgbuild-tiny /tmp/user-data"])]`,
	}))
	r := runIn(t, context.Background(), dir, nil)
	r.ok(t, "tiny")
	var out []string
	for _, ev := range r.Rec.Events() {
		if ev.Type == event.Output && ev.Stream == "stdout" {
			out = append(out, strings.TrimSpace(ev.Message))
		}
	}
	// One key from SMBIOS, one from the seed's user-data.
	if strings.Join(out, " ") != "2 1" {
		t.Errorf("authorized keys and keys in user-data: %v", out)
	}
	if !strings.Contains(r.Rec.Log(), "stopping the machine (shutdown_command is empty)") {
		t.Errorf("no forced stop:\n%s", r.Rec.Log())
	}
	r.nothingLeft(t)
}

// TestKillingImgbuildKillsQEMU runs a build in a child process (this test
// binary, in imgbuild's place), kills the child with SIGKILL while the
// machine is being provisioned, and checks that QEMU died with it. The
// scratch directory of a process killed at once stays, as the engine's
// hard stop says.
func TestKillingImgbuildKillsQEMU(t *testing.T) {
	if dir := os.Getenv("QEMU_TEST_KILLED_DIR"); dir != "" {
		runIn(t, context.Background(), dir, func(ev event.Event) {
			if ev.Type == event.Output {
				os.Stdout.WriteString(ev.Message + "\n")
			}
		})
		return
	}
	dir := tinyWorkspace(t, tinyQemu(map[string]string{
		"name":         `"killed"`,
		"provisioners": `[shell(inline = ["echo provisioning now", "sleep 600"])]`,
	}))
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillingImgbuildKillsQEMU$", "-test.v")
	childTemp := t.TempDir()
	cmd.Env = append(os.Environ(), "QEMU_TEST_KILLED_DIR="+dir, "TMPDIR="+childTemp)
	var out testkit.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Booting the guest under TCG on a busy machine takes a while.
	if !testkit.Poll(3*time.Minute, func() bool { return strings.Contains(out.String(), "provisioning now") }) {
		cmd.Process.Kill()
		t.Fatalf("the build never reached provisioning:\n%s", out.String())
	}
	if len(chroottest.ProcessesNamed("process=imgbuild-killed")) == 0 {
		t.Fatal("no qemu running")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if !testkit.Poll(testkit.WaitTimeout, func() bool { return len(chroottest.ProcessesNamed("process=imgbuild-killed")) == 0 }) {
		t.Fatalf("qemu outlived imgbuild: %v", chroottest.ProcessesNamed("process=imgbuild-killed"))
	}
	var left []string
	filepath.Walk(childTemp, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			left = append(left, strings.TrimPrefix(p, childTemp+"/"))
		}
		return nil
	})
	t.Logf("after SIGKILL: no qemu; the killed process's scratch files stay: %d %v", len(left), left)
}

// TestTwoCPUsUnderTCGBoot boots the tiny guest with cpus = 2 under TCG
// (multi-threaded: -accel tcg,thread=multi, which QEMU refuses beside
// -machine accel=), and checks that the guest sees both CPUs.
func TestTwoCPUsUnderTCGBoot(t *testing.T) {
	dir := tinyWorkspace(t, tinyQemu(map[string]string{
		"cpus":         `2`,
		"accelerator":  `"tcg"`,
		"provisioners": `[shell(inline = ["echo cpus=$(grep -c ^processor /proc/cpuinfo)"])]`,
	}))
	r := runIn(t, context.Background(), dir, nil)
	r.ok(t, "tiny")
	if log := r.Rec.Log(); !strings.Contains(log, "cpus=2") {
		t.Errorf("the guest does not see 2 CPUs:\n%s", log)
	}
}
