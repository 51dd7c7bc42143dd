package testinfra_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/cfgtool/cfgtest"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// requireTestinfra skips the test (fails it under IMGBUILD_INTEGRATION=1)
// without Debian's python3-testinfra.
func requireTestinfra(t testing.TB) {
	t.Helper()
	testkit.RequireProgram(t, "ssh", "openssh-client")
	err := exec.Command("/usr/bin/python3", "-c", "import testinfra, pytest").Run()
	testkit.Require(t, err == nil, "testinfra is not installed for /usr/bin/python3: apt-get install python3-testinfra")
}

// workspace writes files (path → content) into a fresh workspace.
func workspace(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const machineTests = `
def test_the_user_logs_in(host):
    assert host.run("id -un").rc == 0

def test_passwd_is_there(host):
    assert host.file("/etc/passwd").exists

def test_a_command_answers(host):
    print("asked the machine")
    assert host.run("echo hi").stdout.strip() == "hi"
`

func TestTestinfraTestsPassAgainstTheMachineOverSSH(t *testing.T) {
	requireTestinfra(t)
	srv := sshtest.Start(t)
	dir := workspace(t, map[string]string{
		"tests/test_machine.py": machineTests,
		"images.star":           cfgtest.TestedNull(srv, `[testinfra(name = "the machine is sound", test_files = ["tests/test_machine.py"])]`),
	})
	r := cfgtest.Run(t, dir, "images.star", nil)
	r.OK(t)
	res := r.Sum.Result("machine")
	if res.Report == nil || len(res.Report.Tests) != 1 || !res.Report.Tests[0].Passed() {
		t.Fatalf("report %+v", res.Report)
	}
	out := strings.Join(res.Report.Tests[0].Output, "\n")
	cfgtest.WantIn(t, "the test's output", out, "test_a_command_answers[ssh://machine] PASSED", "3 passed")
	var said []string
	for _, e := range r.Rec.Of(event.Message) {
		said = append(said, e.Message)
	}
	cfgtest.WantIn(t, "the messages", strings.Join(said, "\n"), "--ssh-config=", "--hosts=ssh://machine", "testinfra: tests/test_machine.py: 3 passed")
	// pytest wrote nothing into the workspace.
	for _, junk := range []string{".pytest_cache", "tests/__pycache__"} {
		if _, err := os.Stat(filepath.Join(dir, junk)); err == nil {
			t.Errorf("pytest left %s in the workspace", junk)
		}
	}
}

func TestAFailingTestinfraTestFailsTheBuildWithItsNameAndReason(t *testing.T) {
	requireTestinfra(t)
	srv := sshtest.Start(t)
	dir := workspace(t, map[string]string{
		"tests/test_web.py": `
def test_nginx_is_installed(host):
    assert host.file("/usr/sbin/imgbuild-no-such-nginx").exists, "nginx is not installed"

def test_passwd_is_there(host):
    assert host.file("/etc/passwd").exists
`,
		"images.star": cfgtest.TestedNull(srv, `[testinfra(name = "web", test_files = ["tests/test_web.py"])]`),
	})
	r := cfgtest.Run(t, dir, "images.star", nil)
	msg := r.Err(t, "machine")
	cfgtest.WantIn(t, "the error", msg,
		`test "web": testinfra: tests/test_web.py: 1 failed, 1 passed`,
		"FAILED tests/test_web.py::test_nginx_is_installed[ssh://machine] - AssertionError: nginx is not installed")
	finished := r.Rec.Of(event.TestFinished)
	if len(finished) != 1 || finished[0].Status != event.Failed || !slices.ContainsFunc(finished[0].Items, func(s string) bool { return strings.Contains(s, "1 failed, 1 passed") }) {
		t.Errorf("test events %+v", finished)
	}
}

func TestATestinfraFileThatDoesNotExistIsAnError(t *testing.T) {
	srv := sshtest.Start(t)
	dir := workspace(t, map[string]string{
		"images.star": cfgtest.TestedNull(srv, `[testinfra(test_files = ["tests/test_missing.py"])]`),
	})
	_, err := cfgtest.Load(dir, "images.star")
	want := `images.star:2:25: testinfra: for parameter test_files: "tests/test_missing.py" does not exist (looked for ` + filepath.Join(dir, "tests/test_missing.py") + ")"

	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v\nwant %s", err, want)
	}
}

// A Python without testinfra (a virtual environment of Debian's own
// Python, without the system's packages) is named with the package to
// install.
func TestTestinfraNotInstalledNamesTheDebianPackage(t *testing.T) {
	requireTestinfra(t)
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command("/usr/bin/python3", "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		testkit.Skipf(t, "making a virtual environment without testinfra: %v: %s", err, out)
	}
	srv := sshtest.Start(t)
	dir := workspace(t, map[string]string{
		"tests/test_machine.py": machineTests,
		"images.star":           cfgtest.TestedNull(srv, `[testinfra(test_files = ["tests/test_machine.py"], python = "`+venv+`/bin/python3")]`),
	})
	msg := cfgtest.Run(t, dir, "images.star", nil).Err(t, "machine")
	cfgtest.WantIn(t, "the error", msg,
		"testinfra is not installed for "+venv+"/bin/python3 (ModuleNotFoundError: No module named 'testinfra'): install Debian's python3-testinfra package (apt-get install python3-testinfra)")

	dir = workspace(t, map[string]string{
		"tests/test_machine.py": machineTests,
		"images.star":           cfgtest.TestedNull(srv, `[testinfra(test_files = ["tests/test_machine.py"], python = "/nonexistent/python3")]`),
	})
	msg = cfgtest.Run(t, dir, "images.star", nil).Err(t, "machine")
	cfgtest.WantIn(t, "the error", msg, "python: /nonexistent/python3 is not installed on this machine: install Debian's python3-testinfra package")
}

func TestATestinfraTestThatTimesOutFailsSayingSo(t *testing.T) {
	requireTestinfra(t)
	srv := sshtest.Start(t)
	dir := workspace(t, map[string]string{
		"tests/test_slow.py": `
def test_slow(host):
    host.run("sleep 120")
`,
		"images.star": cfgtest.TestedNull(srv, `[testinfra(name = "slow", test_files = ["tests/test_slow.py"], timeout = "3s")]`),
	})
	r := cfgtest.Run(t, dir, "images.star", nil)
	msg := r.Err(t, "machine")
	cfgtest.WantIn(t, "the error", msg, `test "slow": `, "timed out after 3s")
	// Nothing of the test is left running: no pytest, no ssh.
	testkit.Eventually(t, "the test's ssh sessions to end", func() bool { return srv.Processes() == 0 })
}
