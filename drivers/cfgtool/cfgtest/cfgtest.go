// Package cfgtest is what the tests of the configuration-management
// provisioners (drivers/ansible, drivers/puppet, drivers/chef and their
// end-to-end tests) share: workspaces made from testdata, descriptions
// run through engine.Run with every built-in driver, null() keywords for
// the private sshd, and reading an image's tar.
package cfgtest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/all/alltest"
	"github.com/imgbuild/imgbuild/drivers/rootfs"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

// Registry returns a registry with every built-in driver (alltest's).
var Registry = alltest.Registry

// Workspace makes a workspace holding a copy of the directory testdata
// and images.star.
func Workspace(t testing.TB, testdata, star string) string {
	t.Helper()
	dir := t.TempDir()
	testkit.CopyTree(t, testdata, dir, nil)
	testkit.WriteFile(t, filepath.Join(dir, "images.star"), star)
	return dir
}

// Load evaluates file in the workspace dir. Variables can be set as the
// command line tool's IMGBUILD_VAR_<name> (t.Setenv).
func Load(dir, file string) (*description.Description, error) {
	return description.Load(description.Options{File: filepath.Join(dir, file), Registry: Registry(), Getenv: os.LookupEnv})
}

// PackageCache is a package cache for the rootfs() builds of one test
// package (name), kept across runs in $IMGBUILD_TEST_CACHE (else
// /var/cache/imgbuild/test): the builds download once, and do not wait
// for the machine-wide cache other packages' builds hold.
func PackageCache(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("IMGBUILD_TEST_CACHE")
	if dir == "" {
		dir = "/var/cache/imgbuild/test"
	}
	dir = filepath.Join(dir, name+"-packages")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// RequireDebootstrap skips the test (fails it under IMGBUILD_INTEGRATION=1)
// under -short, without root, debootstrap, or the Debian mirror this
// machine's apt uses: what a rootfs() build needs.
func RequireDebootstrap(t testing.TB) {
	t.Helper()
	testkit.SkipIfShort(t, "a rootfs() build debootstraps Debian")
	testkit.RequireRoot(t)
	testkit.RequireProgram(t, "debootstrap", "debootstrap")
	m := rootfs.HostMirror()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(m + "/dists/bookworm/Release")
	if err == nil {
		resp.Body.Close()
	}
	testkit.Require(t, err == nil && resp.StatusCode == 200, "the Debian mirror "+m+" cannot be reached")
}

// Result is a run of a description (alltest's): its summary, events and
// scratch area.
type Result = alltest.Result

// Run evaluates and runs file in its workspace dir, its events going to
// rec (a new Recorder when nil), secrets redacted as the command line
// tool redacts them.
func Run(t testing.TB, dir, file string, rec *testkit.Recorder) *Result {
	t.Helper()
	d, err := Load(dir, file)
	if err != nil {
		t.Fatal(err)
	}
	return RunLoaded(t, d, rec)
}

// RunLoaded runs a description Load evaluated, as Run does, for at most
// 40 minutes.
func RunLoaded(t testing.TB, d *description.Description, rec *testkit.Recorder) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	return alltest.Run(t, ctx, d, rec, 2*time.Minute)
}

// NullHost is the keywords of a null() build that provisions srv.
func NullHost(srv *sshtest.Server) string {
	return fmt.Sprintf("ssh_host = %q, ssh_port = %d, ssh_username = %q, ssh_private_key_file = %q, ssh_host_key = %q",
		srv.Host, srv.Port, srv.User, srv.ClientKeyFile, srv.HostKeyLine)
}

// TestedNull is a null() build named "machine" of srv whose tests =
// [...] are tests (Starlark source): the tests run against srv itself.
func TestedNull(srv *sshtest.Server, tests string) string {
	return "null(name = \"machine\", " + NullHost(srv) + ",\n     tests = " + tests + ")\n"
}

// WantIn fails the test unless s holds every one of wants (testkit's).
var WantIn = testkit.WantIn

// ReadFile returns a file's content, failing the test when it cannot.
func ReadFile(t testing.TB, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TarEntry is one file of a tar, with the content of small regular files.
type TarEntry = testkit.TarEntry

// TarFiles reads a tar into name (without a leading "./") → entry.
func TarFiles(t testing.TB, p string) map[string]TarEntry {
	t.Helper()
	out := map[string]TarEntry{}
	for _, e := range testkit.ReadTarFile(t, p) {
		out[strings.TrimPrefix(strings.TrimPrefix(e.Header.Name, "./"), "/")] = e
	}
	return out
}
