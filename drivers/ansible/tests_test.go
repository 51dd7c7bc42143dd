package ansible_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/cfgtool/cfgtest"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine/event"
)

// TestAnAnsibleTestRunsItsPlaybookAgainstTheTestMachine: ansible() as one
// of tests = [...] runs the playbook against the machine (for null(), the
// target itself) through the adapter; its result carries its name and
// the play's output.
func TestAnAnsibleTestRunsItsPlaybookAgainstTheTestMachine(t *testing.T) {
	requireAnsible(t)
	srv := sshtest.Start(t)
	dir := workspace(t, cfgtest.TestedNull(srv, `[ansible(name = "the machine is sound", playbook_file = "checks/passing.yml")]`))
	r := run(t, dir, "images.star", nil)
	r.OK(t)
	res := r.Sum.Result("machine")
	if res.Report == nil || len(res.Report.Tests) != 1 {
		t.Fatalf("report %+v", res.Report)
	}
	tr := res.Report.Tests[0]
	if !tr.Passed() || tr.Name != "the machine is sound" || tr.Kind != "ansible" {
		t.Errorf("test result %+v", tr)
	}
	wantIn(t, "the test's output", strings.Join(tr.Output, "\n"), "/etc/passwd is there", "ok=2")
	wantIn(t, "the log", r.Rec.Log(), "TASK [The passwd file is there]", "through imgbuild's SSH adapter")
}

// TestAFailedAnsibleTaskFailsTheTestWithItsNameAndMessage: the build
// fails with the test's name, the failed task's name and place, and
// Ansible's message; no task after it ran.
func TestAFailedAnsibleTaskFailsTheTestWithItsNameAndMessage(t *testing.T) {
	requireAnsible(t)
	srv := sshtest.Start(t)
	dir := workspace(t, cfgtest.TestedNull(srv, `[
        ansible(name = "web", playbook_file = "checks/failing.yml"),
        ansible(name = "still run", playbook_file = "checks/passing.yml"),
    ]`))
	r := run(t, dir, "images.star", nil)
	msg := r.Err(t, "machine")
	wantIn(t, "the error", msg,
		"1 of 2 tests failed",
		`"web": ansible-playbook failing.yml failed (exit status 2): task "nginx is installed" (`+filepath.Join(dir, "checks/failing.yml")+`:9) failed on default: nginx is not installed`)
	if strings.Contains(msg, "Never reached") {
		t.Errorf("the error names a task that did not run: %s", msg)
	}
	finished := r.Rec.Of(event.TestFinished)
	if len(finished) != 2 || finished[0].Status != event.Failed || finished[1].Status != event.Passed {
		t.Fatalf("test events %+v", finished)
	}
	if !slices.ContainsFunc(finished[0].Items, func(s string) bool { return strings.Contains(s, "failed=1") }) {
		t.Errorf("the failed test's output tail lacks the recap: %q", finished[0].Items)
	}
}

// TestAnAnsibleTestWhosePlaybookDoesNotExistIsAnError: the same message
// as for any test file that does not exist, at the keyword's place.
func TestAnAnsibleTestWhosePlaybookDoesNotExistIsAnError(t *testing.T) {
	srv := sshtest.Start(t)
	dir := workspace(t, cfgtest.TestedNull(srv, `[ansible(playbook_file = "checks/missing.yml")]`))
	_, err := cfgtest.Load(dir, "images.star")
	want := `images.star:2:23: ansible: for parameter playbook_file: "checks/missing.yml" does not exist (looked for ` + filepath.Join(dir, "checks/missing.yml") + ")"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v\nwant %s", err, want)
	}
}
