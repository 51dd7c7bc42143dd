package vsphere

import (
	"github.com/vmware/govmomi/vim25/types"
)

// hidKey is a USB HID usage code from the keyboard page (0x07), as
// VirtualMachine.PutUsbScanCodes takes them.
type hidKey uint8

// scanCode is the key's code in PutUsbScanCodes' encoding: the usage in the
// upper 16 bits and the usage page (0x07, keyboard) in the lower.
func (k hidKey) scanCode() int32 { return int32(k)<<16 | 0x07 }

// name is the key's markup name, for logs.
func (k hidKey) name() string {
	if n, ok := specialNames[k]; ok {
		return n
	}
	return "key 0x" + string("0123456789abcdef"[k>>4]) + string("0123456789abcdef"[k&15])
}

// specialKeys are the keys boot_command names with <markup>, by lower-case
// name.
var specialKeys = map[string]hidKey{
	"enter": 0x28, "return": 0x28, "esc": 0x29, "bs": 0x2a, "backspace": 0x2a,
	"tab": 0x2b, "spacebar": 0x2c, "space": 0x2c,
	"f1": 0x3a, "f2": 0x3b, "f3": 0x3c, "f4": 0x3d, "f5": 0x3e, "f6": 0x3f,
	"f7": 0x40, "f8": 0x41, "f9": 0x42, "f10": 0x43, "f11": 0x44, "f12": 0x45,
	"insert": 0x49, "home": 0x4a, "pageup": 0x4b, "del": 0x4c, "delete": 0x4c,
	"end": 0x4d, "pagedown": 0x4e, "right": 0x4f, "left": 0x50, "down": 0x51,
	"up": 0x52, "menu": 0x65,
}

// specialNames names each special key once, for logs.
var specialNames = map[hidKey]string{
	0x28: "enter", 0x29: "esc", 0x2a: "bs", 0x2b: "tab", 0x2c: "spacebar",
	0x3a: "f1", 0x3b: "f2", 0x3c: "f3", 0x3d: "f4", 0x3e: "f5", 0x3f: "f6",
	0x40: "f7", 0x41: "f8", 0x42: "f9", 0x43: "f10", 0x44: "f11", 0x45: "f12",
	0x49: "insert", 0x4a: "home", 0x4b: "pageUp", 0x4c: "del", 0x4d: "end",
	0x4e: "pageDown", 0x4f: "right", 0x50: "left", 0x51: "down", 0x52: "up",
	0x65: "menu",
}

// punctuation maps the US keyboard's punctuation keys to the character
// typed without and with shift.
var punctuation = []struct {
	key         hidKey
	plain, shft rune
}{
	{0x2c, ' ', 0}, {0x2d, '-', '_'}, {0x2e, '=', '+'}, {0x2f, '[', '{'}, {0x30, ']', '}'},
	{0x31, '\\', '|'}, {0x33, ';', ':'}, {0x34, '\'', '"'}, {0x35, '`', '~'},
	{0x36, ',', '<'}, {0x37, '.', '>'}, {0x38, '/', '?'},
}

// shiftedDigits are the characters shift types on the digit keys 1..0.
const shiftedDigits = "!@#$%^&*()"

// keyForRune returns the key that types r on a US keyboard and whether it
// needs shift; ok is false for characters the keyboard cannot type.
func keyForRune(r rune) (k hidKey, shift, ok bool) {
	switch {
	case r >= 'a' && r <= 'z':
		return hidKey(0x04 + r - 'a'), false, true
	case r >= 'A' && r <= 'Z':
		return hidKey(0x04 + r - 'A'), true, true
	case r >= '1' && r <= '9':
		return hidKey(0x1e + r - '1'), false, true
	case r == '0':
		return 0x27, false, true
	case r == '\n':
		return 0x28, false, true
	case r == '\t':
		return 0x2b, false, true
	}
	for i, c := range shiftedDigits {
		if r == c {
			return hidKey(0x1e + i), true, true
		}
	}
	for _, p := range punctuation {
		if r == p.plain {
			return p.key, false, true
		}
		if p.shft != 0 && r == p.shft {
			return p.key, true, true
		}
	}
	return 0, false, false
}

// modifier is a modifier key boot_command can hold.
type modifier uint8

const (
	leftCtrl modifier = iota
	leftShift
	leftAlt
	leftSuper
	rightCtrl
	rightShift
	rightAlt
	rightSuper
	numModifiers
)

func (m modifier) name() string {
	return [...]string{"leftCtrl", "leftShift", "leftAlt", "leftSuper", "rightCtrl", "rightShift", "rightAlt", "rightSuper"}[m]
}

// modifierSet is a set of held modifiers, one bit per modifier.
type modifierSet uint8

// spec returns the modifiers in PutUsbScanCodes' form, nil when none is
// held.
func (s modifierSet) spec() *types.UsbScanCodeSpecModifierType {
	if s == 0 {
		return nil
	}
	set := func(m modifier) *bool {
		if s&(1<<m) == 0 {
			return nil
		}
		t := true
		return &t
	}
	return &types.UsbScanCodeSpecModifierType{
		LeftControl: set(leftCtrl), LeftShift: set(leftShift), LeftAlt: set(leftAlt), LeftGui: set(leftSuper),
		RightControl: set(rightCtrl), RightShift: set(rightShift), RightAlt: set(rightAlt), RightGui: set(rightSuper),
	}
}

// usbEvents converts key events to PutUsbScanCodes' form.
func usbEvents(keys []keyEvent) []types.UsbScanCodeSpecKeyEvent {
	out := make([]types.UsbScanCodeSpecKeyEvent, len(keys))
	for i, k := range keys {
		out[i] = types.UsbScanCodeSpecKeyEvent{UsbHidCode: k.Code.scanCode(), Modifiers: k.Modifiers.spec()}
	}
	return out
}
