package qemutest_test

import (
	"testing"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemutest"
)

func TestTinyGuestIsBuilt(t *testing.T) {
	g := qemutest.TinyGuest(t)
	t.Logf("%+v", g)
}
