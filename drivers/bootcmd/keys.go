package bootcmd

// Key is a key of a US keyboard, named by its USB HID usage code on the
// keyboard page (0x07): the identity every way of typing (vSphere's USB scan
// codes, VNC key symbols) translates from.
type Key uint8

// Name is the key's markup name ("enter", "f2"), or the character it types
// without shift.
func (k Key) Name() string {
	if n, ok := specialNames[k]; ok {
		return n
	}
	if r, ok := k.Char(false); ok {
		return string(r)
	}
	return "key 0x" + string("0123456789abcdef"[k>>4]) + string("0123456789abcdef"[k&15])
}

// Char returns the printable character k types on a US keyboard, with or
// without shift; ok is false for keys that type none (enter, the arrows,
// the function keys). The space bar types ' '.
func (k Key) Char(shift bool) (r rune, ok bool) {
	switch {
	case k >= 0x04 && k <= 0x1d:
		if shift {
			return rune('A' + k - 0x04), true
		}
		return rune('a' + k - 0x04), true
	case k >= 0x1e && k <= 0x26:
		if shift {
			return rune(shiftedDigits[k-0x1e]), true
		}
		return rune('1' + k - 0x1e), true
	case k == 0x27:
		if shift {
			return ')', true
		}
		return '0', true
	}
	for _, p := range punctuation {
		if p.key == k {
			if shift {
				return p.shft, p.shft != 0
			}
			return p.plain, true
		}
	}
	return 0, false
}

// Keys named with <markup>.
const (
	KeyEnter     Key = 0x28
	KeyEsc       Key = 0x29
	KeyBackspace Key = 0x2a
	KeyTab       Key = 0x2b
	KeySpace     Key = 0x2c
	KeyF1        Key = 0x3a // KeyF1 + n - 1 is Fn, up to F12
	KeyInsert    Key = 0x49
	KeyHome      Key = 0x4a
	KeyPageUp    Key = 0x4b
	KeyDelete    Key = 0x4c
	KeyEnd       Key = 0x4d
	KeyPageDown  Key = 0x4e
	KeyRight     Key = 0x4f
	KeyLeft      Key = 0x50
	KeyDown      Key = 0x51
	KeyUp        Key = 0x52
	KeyMenu      Key = 0x65
)

// specialKeys are the keys boot_command names with <markup>, by lower-case
// name.
var specialKeys = map[string]Key{
	"enter": KeyEnter, "return": KeyEnter, "esc": KeyEsc, "bs": KeyBackspace, "backspace": KeyBackspace,
	"tab": KeyTab, "spacebar": KeySpace, "space": KeySpace,
	"f1": 0x3a, "f2": 0x3b, "f3": 0x3c, "f4": 0x3d, "f5": 0x3e, "f6": 0x3f,
	"f7": 0x40, "f8": 0x41, "f9": 0x42, "f10": 0x43, "f11": 0x44, "f12": 0x45,
	"insert": KeyInsert, "home": KeyHome, "pageup": KeyPageUp, "del": KeyDelete, "delete": KeyDelete,
	"end": KeyEnd, "pagedown": KeyPageDown, "right": KeyRight, "left": KeyLeft, "down": KeyDown,
	"up": KeyUp, "menu": KeyMenu,
}

// specialNames names each special key once, for logs.
var specialNames = map[Key]string{
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
	key         Key
	plain, shft rune
}{
	{0x2c, ' ', 0}, {0x2d, '-', '_'}, {0x2e, '=', '+'}, {0x2f, '[', '{'}, {0x30, ']', '}'},
	{0x31, '\\', '|'}, {0x33, ';', ':'}, {0x34, '\'', '"'}, {0x35, '`', '~'},
	{0x36, ',', '<'}, {0x37, '.', '>'}, {0x38, '/', '?'},
}

// shiftedDigits are the characters shift types on the digit keys 1..0.
const shiftedDigits = "!@#$%^&*()"

// KeyFor returns the key that types r on a US keyboard and whether it
// needs shift; ok is false for characters the keyboard cannot type. A
// newline is enter and a tab is tab.
func KeyFor(r rune) (k Key, shift, ok bool) {
	switch {
	case r >= 'a' && r <= 'z':
		return Key(0x04 + r - 'a'), false, true
	case r >= 'A' && r <= 'Z':
		return Key(0x04 + r - 'A'), true, true
	case r >= '1' && r <= '9':
		return Key(0x1e + r - '1'), false, true
	case r == '0':
		return 0x27, false, true
	case r == '\n':
		return KeyEnter, false, true
	case r == '\t':
		return KeyTab, false, true
	}
	for i, c := range shiftedDigits {
		if r == c {
			return Key(0x1e + i), true, true
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

// Modifier is a modifier key boot_command can hold.
type Modifier uint8

// The modifiers, in the order of the HID modifier byte.
const (
	LeftCtrl Modifier = iota
	LeftShift
	LeftAlt
	LeftSuper
	RightCtrl
	RightShift
	RightAlt
	RightSuper
	numModifiers
)

// Name is the modifier's markup name ("leftCtrl").
func (m Modifier) Name() string {
	return [...]string{"leftCtrl", "leftShift", "leftAlt", "leftSuper", "rightCtrl", "rightShift", "rightAlt", "rightSuper"}[m]
}

// Modifiers is a set of held modifiers, one bit per Modifier.
type Modifiers uint8

// Has reports whether m is in the set.
func (s Modifiers) Has(m Modifier) bool { return s&(1<<m) != 0 }

// List returns the modifiers in the set, in Modifier order.
func (s Modifiers) List() []Modifier {
	var out []Modifier
	for m := Modifier(0); m < numModifiers; m++ {
		if s.Has(m) {
			out = append(out, m)
		}
	}
	return out
}

// Shift reports whether either shift key is in the set.
func (s Modifiers) Shift() bool { return s.Has(LeftShift) || s.Has(RightShift) }
