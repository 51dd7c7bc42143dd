package vsphere

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imgbuild/imgbuild/engine/schema"
)

// A boot command is what a person would type at the installer's boot
// prompt, written as text with two kinds of markup:
//
//   - <name> is a key or an action: <enter>, <esc>, <tab>, <bs>, <del>,
//     <spacebar>, <insert>, <home>, <end>, <pageUp>, <pageDown>, <up>,
//     <down>, <left>, <right>, <f1> to <f12>; <leftCtrlOn> ... <leftCtrlOff>
//     (and leftAlt, leftShift, leftSuper, rightCtrl, rightAlt, rightShift,
//     rightSuper) hold a modifier for the keys between them; <wait> waits a
//     second, <wait5> five seconds and <wait1m30s> any duration; <lt> and
//     <gt> type "<" and ">". Names are not case-sensitive.
//   - {name} is a value known only while the build runs: {http_ip},
//     {http_port}, {http_url} (http://ip:port) and {vm_name}.
//
// Everything else is typed as it is written, on a US keyboard; a newline
// types <enter> and a tab <tab>. A "<" or "{" that does not start markup is
// typed too. Go template syntax ({{ .HTTPIP }}) is refused with the
// placeholder to write instead.

// bootActionKind says what a bootAction does.
type bootActionKind int

const (
	actText        bootActionKind = iota // type Text
	actKey                               // press Key
	actWait                              // wait Wait
	actModifier                          // hold (On) or release Modifier
	actPlaceholder                       // type the value of Placeholder
)

// bootAction is one parsed element of a boot command.
type bootAction struct {
	Kind        bootActionKind
	Text        string
	Key         hidKey
	Wait        time.Duration
	Modifier    modifier
	On          bool
	Placeholder string
}

// bootPlaceholders are the {name} values a boot command may use, with what
// they stand for.
var bootPlaceholders = map[string]string{
	"http_ip":   "the address of the local HTTP server serving http_directory and http_content",
	"http_port": "its port",
	"http_url":  "http://{http_ip}:{http_port}",
	"vm_name":   "the VM's name",
}

// goTemplateNames maps Packer's template values to our placeholders, for
// the error that tells a Packer user what to write.
var goTemplateNames = map[string]string{
	"HTTPIP": "{http_ip}", "HTTPPort": "{http_port}", "Name": "{vm_name}",
}

var goTemplateRe = regexp.MustCompile(`\{\{-?\s*\.(\w*)[^}]*\}\}`)

// parseBootCommand parses a boot command (the boot_command list joined)
// into actions. Errors name the offending markup and say how to write it.
func parseBootCommand(s string) ([]bootAction, error) {
	if m := goTemplateRe.FindStringSubmatch(s); m != nil {
		want := goTemplateNames[m[1]]
		if want == "" {
			want = "one of " + knownPlaceholders()
		}
		return nil, fmt.Errorf("%q is Go template syntax, which boot_command does not use: write %s", m[0], want)
	}
	var out []bootAction
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			out = append(out, bootAction{Kind: actText, Text: text.String()})
			text.Reset()
		}
	}
	held := map[modifier]bool{}
	for i := 0; i < len(s); {
		c := s[i]
		switch c {
		case '<':
			name, n := markupName(s[i:], '<', '>', isKeyNameByte)
			if n == 0 {
				text.WriteByte(c)
				i++
				continue
			}
			a, err := parseKeyMarkup(name)
			if err != nil {
				return nil, err
			}
			flush()
			if a.Kind == actText {
				// <lt>, <gt>: typed like text.
				text.WriteString(a.Text)
			} else {
				if a.Kind == actModifier {
					if a.On == held[a.Modifier] {
						if a.On {
							return nil, fmt.Errorf("<%s> holds %s, which an earlier <%sOn> already holds", name, a.Modifier.name(), a.Modifier.name())
						}
						return nil, fmt.Errorf("<%s> releases %s, which is not held: hold it first with <%sOn>", name, a.Modifier.name(), a.Modifier.name())
					}
					held[a.Modifier] = a.On
				}
				out = append(out, a)
			}
			i += n
		case '{':
			name, n := markupName(s[i:], '{', '}', isPlaceholderByte)
			if n == 0 || (i > 0 && s[i-1] == '$') {
				text.WriteByte(c)
				i++
				continue
			}
			if _, ok := bootPlaceholders[name]; !ok {
				return nil, fmt.Errorf("unknown placeholder {%s} (known: %s)", name, knownPlaceholders())
			}
			flush()
			out = append(out, bootAction{Kind: actPlaceholder, Placeholder: name})
			i += n
		default:
			r, size := decodeRune(s[i:])
			if _, _, ok := keyForRune(r); !ok {
				return nil, fmt.Errorf("%s cannot be typed on a US keyboard: write it with markup such as <enter>, or leave it out", describeRune(r))
			}
			text.WriteString(s[i : i+size])
			i += size
		}
	}
	flush()
	var stuck []string
	for m, on := range held {
		if on {
			stuck = append(stuck, "<"+m.name()+"Off>")
		}
	}
	if len(stuck) > 0 {
		sort.Strings(stuck)
		return nil, fmt.Errorf("boot_command ends with modifiers still held: add %s", strings.Join(stuck, " "))
	}
	return out, nil
}

func knownPlaceholders() string {
	names := make([]string, 0, len(bootPlaceholders))
	for n := range bootPlaceholders {
		names = append(names, "{"+n+"}")
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func isKeyNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isPlaceholderByte(c byte) bool { return c >= 'a' && c <= 'z' || c == '_' }

// markupName reads open name close at the start of s and returns the name
// and the length of the markup, or 0 when s does not start with markup.
func markupName(s string, open, close byte, ok func(byte) bool) (string, int) {
	if len(s) < 3 || s[0] != open {
		return "", 0
	}
	j := 1
	for j < len(s) && ok(s[j]) {
		j++
	}
	if j == 1 || j >= len(s) || s[j] != close {
		return "", 0
	}
	return s[1:j], j + 1
}

var waitRe = regexp.MustCompile(`^wait([0-9]*)$`)

// parseKeyMarkup parses the name inside <...>.
func parseKeyMarkup(name string) (bootAction, error) {
	lower := strings.ToLower(name)
	switch lower {
	case "lt":
		return bootAction{Kind: actText, Text: "<"}, nil
	case "gt":
		return bootAction{Kind: actText, Text: ">"}, nil
	}
	if strings.HasPrefix(lower, "wait") {
		if m := waitRe.FindStringSubmatch(lower); m != nil {
			secs := 1
			if m[1] != "" {
				n, err := strconv.Atoi(m[1])
				if err != nil || n > 24*3600 {
					return bootAction{}, fmt.Errorf("<%s> waits too long: at most a day", name)
				}
				secs = n
			}
			return bootAction{Kind: actWait, Wait: time.Duration(secs) * time.Second}, nil
		}
		d, err := time.ParseDuration(lower[len("wait"):])
		if err != nil || d < 0 {
			return bootAction{}, fmt.Errorf("<%s> is not a wait: write <wait> (one second), <wait5> (seconds) or <wait1m30s> (a duration)", name)
		}
		if d > 24*time.Hour {
			return bootAction{}, fmt.Errorf("<%s> waits too long: at most a day", name)
		}
		return bootAction{Kind: actWait, Wait: d}, nil
	}
	for m := modifier(0); m < numModifiers; m++ {
		switch lower {
		case strings.ToLower(m.name()) + "on":
			return bootAction{Kind: actModifier, Modifier: m, On: true}, nil
		case strings.ToLower(m.name()) + "off":
			return bootAction{Kind: actModifier, Modifier: m, On: false}, nil
		}
	}
	if k, ok := specialKeys[lower]; ok {
		return bootAction{Kind: actKey, Key: k}, nil
	}
	msg := fmt.Sprintf("unknown key <%s>", name)
	if near := schema.Nearest(lower, keyMarkupNames()); near != "" {
		msg += fmt.Sprintf(" (did you mean <%s>?)", near)
	}
	return bootAction{}, fmt.Errorf("%s; to type the text itself write <lt>%s<gt>", msg, name)
}

// keyMarkupNames lists every <name> the parser knows, for suggestions.
func keyMarkupNames() []string {
	names := []string{"lt", "gt", "wait"}
	for n := range specialKeys {
		names = append(names, n)
	}
	for m := modifier(0); m < numModifiers; m++ {
		names = append(names, strings.ToLower(m.name())+"on", strings.ToLower(m.name())+"off")
	}
	sort.Strings(names)
	return names
}

func decodeRune(s string) (rune, int) { return utf8.DecodeRuneInString(s) }

func describeRune(r rune) string {
	if r < 0x20 || r == 0x7f {
		return fmt.Sprintf("the control character %U", r)
	}
	return fmt.Sprintf("%q", r)
}

// keyEvent is one key press to send: a HID usage code and the modifiers
// held with it.
type keyEvent struct {
	Code      hidKey
	Modifiers modifierSet
}

// bootStep is what typing a boot command does in order: send key events
// or wait.
type bootStep struct {
	Keys []keyEvent
	Wait time.Duration
	// Text is what Keys type, for the log: markup for special keys, the
	// characters otherwise.
	Text string
}

// plan expands placeholders with vals and turns actions into steps: runs
// of key events separated by waits.
func planBootCommand(actions []bootAction, vals map[string]string) ([]bootStep, error) {
	var steps []bootStep
	var cur bootStep
	var held modifierSet
	flush := func() {
		if len(cur.Keys) > 0 {
			steps = append(steps, cur)
		}
		cur = bootStep{}
	}
	typeText := func(t string) error {
		for _, r := range t {
			k, shift, ok := keyForRune(r)
			if !ok {
				return fmt.Errorf("%s cannot be typed on a US keyboard", describeRune(r))
			}
			mods := held
			if shift {
				mods |= 1 << leftShift
			}
			cur.Keys = append(cur.Keys, keyEvent{Code: k, Modifiers: mods})
			cur.Text += string(r)
		}
		return nil
	}
	for _, a := range actions {
		switch a.Kind {
		case actText:
			if err := typeText(a.Text); err != nil {
				return nil, err
			}
		case actPlaceholder:
			v, ok := vals[a.Placeholder]
			if !ok {
				return nil, fmt.Errorf("{%s} has no value in this build", a.Placeholder)
			}
			if err := typeText(v); err != nil {
				return nil, fmt.Errorf("the value of {%s}: %w", a.Placeholder, err)
			}
		case actKey:
			cur.Keys = append(cur.Keys, keyEvent{Code: a.Key, Modifiers: held})
			cur.Text += "<" + a.Key.name() + ">"
		case actModifier:
			if a.On {
				held |= 1 << a.Modifier
			} else {
				held &^= 1 << a.Modifier
			}
		case actWait:
			flush()
			steps = append(steps, bootStep{Wait: a.Wait})
		}
	}
	flush()
	return steps, nil
}
