package qemutest_test

import (
	"testing"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemutest"
)

func TestTinyGuestIsBuilt(t *testing.T) {
	g := qemutest.TinyGuest(t)
	t.Logf("%+v", g)
}

func TestInstallerISOsAreBuilt(t *testing.T) {
	for _, efi := range []bool{false, true} {
		t.Logf("efi=%v: %s", efi, qemutest.ISO(t, efi))
	}
}
