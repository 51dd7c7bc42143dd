package e2e

import (
	"archive/tar"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/cfgtool/cfgtest"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// repoRoot is the repository's top directory.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "../../..")
}

// requireDebootstrap skips the test (fails it under IMGBUILD_INTEGRATION=1)
// without root, debootstrap, ansible-playbook or the Debian mirror.
func requireDebootstrap(t *testing.T) {
	t.Helper()
	cfgtest.RequireDebootstrap(t)
	testkit.RequireProgram(t, "mkfs.ext4", "e2fsprogs")
	testkit.RequireProgram(t, "ansible-playbook", "ansible-core")
}

// check fails the test unless the tar holds name, with want in it.
func check(t *testing.T, files map[string]cfgtest.TarEntry, name, want string) {
	t.Helper()
	e, ok := files[name]
	if !ok {
		t.Errorf("the image has no %s", name)
		return
	}
	if want != "" && !strings.Contains(e.Data, want) {
		t.Errorf("%s = %q, want it to hold %q", name, e.Data, want)
	}
}

// enabled fails the test unless unit is enabled for multi-user.target.
func enabled(t *testing.T, files map[string]cfgtest.TarEntry, unit string) {
	t.Helper()
	e := files["etc/systemd/system/multi-user.target.wants/"+unit]
	if e.Header == nil || e.Header.Typeflag != tar.TypeSymlink {
		t.Errorf("%s is not enabled: %+v", unit, e.Header)
	}
}
