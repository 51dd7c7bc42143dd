package ansible_test

import (
	"testing"

	"github.com/imgbuild/imgbuild/drivers/cfgtool/cfgtest"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// requireAnsible skips the test (fails it under IMGBUILD_INTEGRATION=1)
// without ansible-playbook.
func requireAnsible(t testing.TB) {
	t.Helper()
	testkit.RequireProgram(t, "ansible-playbook", "ansible-core")
}

// workspace makes a workspace holding testdata/ and images.star.
func workspace(t testing.TB, star string) string {
	t.Helper()
	return cfgtest.Workspace(t, "testdata", star)
}

var (
	run      = cfgtest.Run
	nullHost = cfgtest.NullHost
	readFile = cfgtest.ReadFile
	wantIn   = cfgtest.WantIn
)
