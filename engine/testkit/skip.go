package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// IntegrationEnv is the variable that turns skips into failures.
const IntegrationEnv = "IMGBUILD_INTEGRATION"

// Integration reports whether IMGBUILD_INTEGRATION=1 is set: every
// counterpart must be there, and a test that would skip fails instead.
func Integration() bool { return os.Getenv(IntegrationEnv) == "1" }

// Skip skips the test, saying why, or fails it under IMGBUILD_INTEGRATION=1.
// why says what is missing and how to get it ("qemu-img is not installed:
// apt-get install qemu-utils").
func Skip(t testing.TB, why string) {
	t.Helper()
	if Integration() {
		t.Fatal(why + " (" + IntegrationEnv + "=1: a missing counterpart fails the test)")
	}
	t.Skip(why + " (" + IntegrationEnv + "=1 makes this a failure)")
}

// Skipf is [Skip] with a formatted reason.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	Skip(t, fmt.Sprintf(format, args...))
}

// Require calls [Skip] with why unless ok.
func Require(t testing.TB, ok bool, why string) {
	t.Helper()
	if !ok {
		Skip(t, why)
	}
}

// RequireProgram returns the path of program, or calls [Skip] saying
// which Debian package installs it.
func RequireProgram(t testing.TB, program, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err != nil {
		Skipf(t, "%s is not installed: apt-get install %s", program, debianPackage)
		return ""
	}
	return p
}

// RequireRoot calls [Skip] unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	Require(t, os.Geteuid() == 0, "this test needs root (namespaces, mounts, chroot)")
}

// SkipIfShort skips a slow test under go test -short, saying why it is
// slow. Under IMGBUILD_INTEGRATION=1 the test always runs.
func SkipIfShort(t testing.TB, why string) {
	t.Helper()
	if testing.Short() && !Integration() {
		t.Skip(why + "; not in -short")
	}
}

// OptIn skips a test that is not part of the suite (a benchmark, a long
// end-to-end flow run by a make target) unless env is set to 1. It never
// fails: CI runs such tests through their own targets.
func OptIn(t testing.TB, env, why string) {
	t.Helper()
	if os.Getenv(env) != "1" {
		t.Skip(why + ": set " + env + "=1 to run it")
	}
}

// ChildEnv returns $env, which a test sets when it runs this test binary
// again as a child process that plays a part (holds a lock, writes the
// state while another process does). When env is empty the test is not
// such a child: it skips, never fails, saying which test runs it.
func ChildEnv(t testing.TB, env, runBy string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		t.Skip("a child process of " + runBy + " (with " + env + " set)")
	}
	return v
}
