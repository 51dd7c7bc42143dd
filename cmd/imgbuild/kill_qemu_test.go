package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemutest"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/journal"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// tinyBuild is a qemu() build of the tiny guest whose provisioners run on
// the guest and, with a process left in the background, on this machine.
const tinyBuild = `qemu(
    name = "%s",
    disk = "tiny/disk.raw",
    kernel = "tiny/vmlinuz",
    initrd = "tiny/initramfs.cpio.gz",
    append = "console=ttyS0,115200n8 quiet loglevel=4 panic=-1",
    memory = 256,
    ssh_timeout = "3m",
    shutdown_timeout = "1m",
    provisioners = [
        shell(inline = ["echo on the guest"]),
        shell_local(inline = ["sleep 300 &", "echo local started"]),
    ],
)
`

// TestAKilledQemuBuildLeavesNothingAfterImgbuildCleanup kills imgbuild (the
// real binary) with SIGKILL as each step of a qemu() build of the tiny
// guest starts, then runs imgbuild cleanup: no QEMU process, no process of
// the provisioners, no scratch directory or temporary output file, no
// output directory the build made, no mount under the workspace and no
// journal is left.
func TestAKilledQemuBuildLeavesNothingAfterImgbuildCleanup(t *testing.T) {
	g := qemutest.TinyGuest(t)
	// A name of its own: QEMU processes are told apart by it (other test
	// runs may boot the tiny guest meanwhile).
	var b [3]byte
	rand.Read(b[:])
	name := "kill-" + hex.EncodeToString(b[:])
	dir := testkit.Workspace(t, map[string]string{"images.star": fmt.Sprintf(tinyBuild, name)})
	g.Into(t, dir)

	// A run to its end: the steps it takes. Its image is removed.
	r := startJSON(t, dir, binary, "run", "images.star", "--json")
	var steps []string
	for e := range r.events {
		if e.Type == event.StepStarted && e.Build == name {
			steps = append(steps, e.Step)
		}
	}
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("the build without a kill: %v\n%s", err, r.stderr)
	}
	os.RemoveAll(filepath.Join(dir, "output"))
	os.RemoveAll(filepath.Join(dir, ".imgbuild", "outputs"))

	leaks := 0
	for _, s := range steps {
		r := startJSON(t, dir, binary, "run", "images.star", "--json")
		r.waitFor(t, "step "+s, func(e event.Event) bool { return e.Type == event.StepStarted && e.Step == s })
		r.kill(t)
		run := ""
		for _, j := range entries(filepath.Join(dir, ".imgbuild", "journal")) {
			if id, ok := strings.CutSuffix(j, ".jsonl"); ok {
				run = id
			}
		}
		out, err := exec.Command(binary, "cleanup", dir).CombinedOutput()
		if err != nil {
			t.Errorf("killed at %s: imgbuild cleanup: %v\n%s", s, err, out)
		}
		left := leftByTinyBuild(t, dir, name, run)
		if len(left) > 0 {
			t.Errorf("killed at step %s, then imgbuild cleanup: left\n  %s\ncleanup said:\n%s", s, strings.Join(left, "\n  "), out)
			leaks += len(left)
		}
	}
	t.Logf("kills tried: %d (one as each step starts); leaks found: %d", len(steps), leaks)
}

// leftByTinyBuild lists what a killed run of the tiny build left.
func leftByTinyBuild(t *testing.T, dir, name, run string) []string {
	t.Helper()
	var left []string
	if run != "" {
		for _, p := range processesOf(t, run) {
			left = append(left, "process "+p)
		}
	}
	if out, _ := exec.Command("pgrep", "-f", "process=imgbuild-"+name).Output(); len(strings.TrimSpace(string(out))) > 0 {
		left = append(left, "qemu processes "+strings.Join(strings.Fields(string(out)), ", "))
	}
	for _, d := range entries(filepath.Join(dir, ".imgbuild", "tmp")) {
		left = append(left, "scratch directory "+d)
	}
	for _, j := range entries(filepath.Join(dir, ".imgbuild", "journal")) {
		left = append(left, "journal "+j)
	}
	if _, err := os.Stat(filepath.Join(dir, "output")); err == nil {
		filepath.WalkDir(filepath.Join(dir, "output"), func(p string, d os.DirEntry, err error) error {
			if err == nil && (output.IsTemporary(d.Name()) || !d.IsDir()) {
				left = append(left, "output "+p)
			}
			return nil
		})
		if ents := entries(filepath.Join(dir, "output")); len(ents) > 0 {
			left = append(left, "output directories "+strings.Join(ents, ", "))
		}
	}
	for _, d := range entries(dir) {
		if output.IsTemporary(d) {
			left = append(left, "temporary "+d)
		}
	}
	if m, err := journal.MountsUnder(dir); err != nil || len(m) > 0 {
		left = append(left, "mounts "+strings.Join(m, ", "))
	}
	return left
}
