package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Nobody is the uid and gid [RunAsNobody] runs as.
const Nobody = 65534

// RunAsNobody runs the tests of this test binary that match pattern as
// uid and gid 65534, with env added to a minimal environment, and returns
// their combined output. The binary is copied to a directory nobody can
// read first (the original may sit where nobody cannot). The test must be
// root; the caller checks the output. A test uses it to see what a user
// without root is told: the child recognises itself by a variable in env.
func RunAsNobody(t testing.TB, pattern string, env ...string) string {
	t.Helper()
	RequireRoot(t)
	// Not t.TempDir: its parents are private to root.
	dir, err := os.MkdirTemp("", "imgbuild-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "test.bin")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run="+pattern, "-test.v")
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: Nobody, Gid: Nobody}}
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// WantAsNobody runs the tests of this test binary that match pattern as
// nobody ([RunAsNobody], with env) and fails the test unless their output
// holds want, what a user without root is told. It returns the output.
func WantAsNobody(t testing.TB, pattern, env, want string) string {
	t.Helper()
	out := RunAsNobody(t, pattern, env)
	if !strings.Contains(out, want) {
		t.Errorf("as nobody:\n%s\nwant %q", out, want)
	}
	return out
}
