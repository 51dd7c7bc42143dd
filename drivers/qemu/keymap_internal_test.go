package qemu

import (
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/bootcmd"
)

// TestEveryBootCommandKeyHasAQcode checks that each key boot_command can
// type (every character of a US keyboard and every <markup> key) has a
// QEMU key code, and the function keys theirs.
func TestEveryBootCommandKeyHasAQcode(t *testing.T) {
	for k := range 256 {
		key := bootcmd.Key(k)
		if strings.HasPrefix(key.Name(), "key 0x") {
			continue
		}
		if _, ok := qcodes[key]; !ok {
			t.Errorf("<%s> (0x%02x) has no qcode", key.Name(), k)
		}
	}
	for r := rune(0x20); r < 0x7f; r++ {
		k, _, ok := bootcmd.KeyFor(r)
		if !ok {
			t.Errorf("%q cannot be typed", r)
		} else if _, ok := qcodes[k]; !ok {
			t.Errorf("%q (key 0x%02x) has no qcode", r, k)
		}
	}
	for i, want := range []string{"f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "f11", "f12"} {
		if got := qcodes[bootcmd.KeyF1+bootcmd.Key(i)]; got != want {
			t.Errorf("F%d is %q, want %q", i+1, got, want)
		}
	}
	for m := bootcmd.LeftCtrl; m <= bootcmd.RightSuper; m++ {
		if modifierQcodes[m] == "" {
			t.Errorf("%s has no qcode", m.Name())
		}
	}
}
