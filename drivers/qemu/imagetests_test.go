package qemu_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemutest"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// The tests of a qemu() build boot the new disk as a machine of its own:
// what the provisioners wrote is there, and the outputs are placed only
// when every test passed.
func TestTestsBootTheNewDiskAndAPassPublishesIt(t *testing.T) {
	qemutest.RequireQEMU(t)
	dir := tinyWorkspace(t, tinyQemu(map[string]string{
		"provisioners": `[shell(inline = ["echo provisioned > /mnt/provisioned"])]`,
		"tests": `[
            shell(name = "the provisioned file is on the new disk", inline = ["grep -q provisioned /mnt/provisioned", "echo found it"]),
            shell(name = "the machine is fresh", inline = ["test ! -e /tmp/imgbuild-test-marker", "touch /tmp/imgbuild-test-marker"]),
        ]`,
	}))
	r := runIn(t, context.Background(), dir, nil)
	r.ok(t, "tiny")
	steps := strings.Join(r.Rec.Steps("tiny"), ", ")
	for _, want := range []string{"convert, test, test machine: inspect new disk, test machine: create overlay, test machine: make SSH key, test machine: start machine, test machine: wait for SSH, run tests, place outputs"} {
		if !strings.Contains(steps, want) {
			t.Errorf("steps %s, want them to hold %s", steps, want)
		}
	}
	var passed []string
	for _, e := range r.Rec.Of(event.TestFinished) {
		if e.Status == event.Passed {
			passed = append(passed, e.Message)
		}
	}
	if len(passed) != 2 {
		t.Errorf("passed tests: %v\n%s", passed, r.Rec.Log())
	}
	res := r.Sum.Result("tiny")
	if res.Report == nil || len(res.Report.Tests) != 2 || res.Report.Tests[0].Output[len(res.Report.Tests[0].Output)-1] != "found it" {
		t.Errorf("report: %+v", res.Report)
	}
	if _, err := os.Stat(filepath.Join(dir, "output/tiny/tiny.qcow2")); err != nil {
		t.Errorf("the tested disk was not placed: %v", err)
	}
	r.nothingLeft(t)
}

func TestAFailedTestOfTheNewDiskLeavesNoOutput(t *testing.T) {
	qemutest.RequireQEMU(t)
	dir := tinyWorkspace(t, tinyQemu(map[string]string{
		"tests": `[shell(name = "a file that is not there", inline = ["echo looking for /mnt/missing", "test -e /mnt/missing"])]`,
	}))
	r := runIn(t, context.Background(), dir, nil)
	msg := r.Err(t, "tiny")
	if !strings.Contains(msg, `test "a file that is not there": `) || !strings.Contains(msg, "exited with status 1") {
		t.Errorf("error: %s", msg)
	}
	finished := r.Rec.Of(event.TestFinished)
	if len(finished) != 1 || finished[0].Status != event.Failed || len(finished[0].Items) == 0 || finished[0].Items[0] != "looking for /mnt/missing" {
		t.Errorf("test events: %+v", finished)
	}
	// Nothing published, nothing left: no output files, no machine, no
	// scratch directory.
	files := testkit.FilesUnder(filepath.Join(dir, "output"))
	if len(files) > 0 {
		t.Errorf("output files left: %v", files)
	}
	r.nothingLeft(t)
	t.Logf("leaks counted: %d output files, %d other", len(files), len(r.leftovers()))
}
