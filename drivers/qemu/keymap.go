package qemu

import "github.com/imgbuild/imgbuild/drivers/bootcmd"

// qcodes are QEMU's names (QKeyCode) of the keys boot_command types, by
// their USB HID usage (bootcmd.Key).
var qcodes = func() map[bootcmd.Key]string {
	m := map[bootcmd.Key]string{
		0x27: "0", 0x28: "ret", 0x29: "esc", 0x2a: "backspace", 0x2b: "tab", 0x2c: "spc",
		0x2d: "minus", 0x2e: "equal", 0x2f: "bracket_left", 0x30: "bracket_right", 0x31: "backslash",
		0x33: "semicolon", 0x34: "apostrophe", 0x35: "grave_accent", 0x36: "comma", 0x37: "dot", 0x38: "slash",
		0x49: "insert", 0x4a: "home", 0x4b: "pgup", 0x4c: "delete", 0x4d: "end", 0x4e: "pgdn",
		0x4f: "right", 0x50: "left", 0x51: "down", 0x52: "up", 0x65: "compose",
	}
	for i := range 26 {
		m[bootcmd.Key(0x04+i)] = string(rune('a' + i))
	}
	for i := range 9 {
		m[bootcmd.Key(0x1e+i)] = string(rune('1' + i))
	}
	for i := range 12 {
		m[bootcmd.KeyF1+bootcmd.Key(i)] = "f" + string("123456789"[i%9:i%9+1])
	}
	for i, n := range []string{"f10", "f11", "f12"} {
		m[bootcmd.KeyF1+bootcmd.Key(9+i)] = n
	}
	return m
}()

// modifierQcodes are QEMU's names of the modifier keys.
var modifierQcodes = map[bootcmd.Modifier]string{
	bootcmd.LeftCtrl: "ctrl", bootcmd.LeftShift: "shift", bootcmd.LeftAlt: "alt", bootcmd.LeftSuper: "meta_l",
	bootcmd.RightCtrl: "ctrl_r", bootcmd.RightShift: "shift_r", bootcmd.RightAlt: "alt_r", bootcmd.RightSuper: "meta_r",
}
