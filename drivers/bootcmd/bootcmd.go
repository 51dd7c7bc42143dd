// Package bootcmd parses and types boot commands: what a person would type
// at an installer's boot prompt, written as text with two kinds of markup,
// as Packer's boot_command is.
//
//   - <name> is a key or an action: <enter>, <esc>, <tab>, <bs>, <del>,
//     <spacebar>, <insert>, <home>, <end>, <pageUp>, <pageDown>, <up>,
//     <down>, <left>, <right>, <menu>, <f1> to <f12>; <leftCtrlOn> ...
//     <leftCtrlOff> (and leftAlt, leftShift, leftSuper, rightCtrl,
//     rightAlt, rightShift, rightSuper) hold a modifier for the keys between
//     them; <wait> waits a second, <wait5> five seconds and <wait1m30s> any
//     duration; <lt> and <gt> type "<" and ">". Names are not
//     case-sensitive.
//   - {name} is a value known only while the build runs: {http_ip},
//     {http_port}, {http_url} (http://ip:port) and {name} (also {vm_name}),
//     the machine's name.
//
// Everything else is typed as it is written, on a US keyboard; a newline
// types <enter> and a tab <tab>. A "<" or "{" that does not start markup is
// typed too. Go template syntax ({{ .HTTPIP }}) is refused with the
// placeholder to write instead. Errors say where in the command they are.
//
// Parse reads a command, Plan fills in the placeholders and turns it into
// key presses and waits, and Type types them on a Keyboard: the drivers
// provide the keyboard (vSphere's USB scan codes, QEMU's VNC server). The
// package knows no platform and no Starlark.
package bootcmd

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imgbuild/imgbuild/engine/schema"
)

// MaxWait is the longest one <wait...> may wait.
const MaxWait = 24 * time.Hour

type actionKind int

const (
	actText        actionKind = iota // type text
	actKey                           // press key
	actWait                          // wait
	actModifier                      // hold (on) or release mod
	actPlaceholder                   // type the value of placeholder
)

// action is one parsed element of a boot command.
type action struct {
	kind        actionKind
	text        string
	key         Key
	wait        time.Duration
	mod         Modifier
	on          bool
	placeholder string
}

// Command is a parsed boot command.
type Command struct {
	actions []action
}

// Placeholders are the {name} values a boot command may use, with what
// they stand for.
var Placeholders = map[string]string{
	"http_ip":   "the address of the local HTTP server serving http_directory and http_content",
	"http_port": "its port",
	"http_url":  "http://{http_ip}:{http_port}",
	"name":      "the machine's name",
	"vm_name":   "the machine's name (as {name})",
}

// goTemplateNames maps Packer's template values to our placeholders, for
// the error that tells a Packer user what to write.
var goTemplateNames = map[string]string{
	"HTTPIP": "{http_ip}", "HTTPPort": "{http_port}", "Name": "{name}",
}

var goTemplateRe = regexp.MustCompile(`\{\{-?\s*\.(\w*)[^}]*\}\}`)

// SyntaxError is a mistake in a boot command, with where it is.
type SyntaxError struct {
	// Element is the index of the list element the mistake is in, -1 when
	// the command is one string.
	Element int
	// Column is the mistake's position in the element, in characters from
	// 1; 0 when it is about the command as a whole.
	Column int
	Msg    string
}

func (e *SyntaxError) Error() string {
	switch {
	case e.Column == 0:
		return e.Msg
	case e.Element < 0:
		return fmt.Sprintf("at character %d: %s", e.Column, e.Msg)
	}
	return fmt.Sprintf("element %d, character %d: %s", e.Element, e.Column, e.Msg)
}

// Check checks a builder's boot_command keyword (unless its value is known
// only at run time): it must parse, and it may use {http_ip}, {http_port}
// or {http_url} only when the build serves files over HTTP (served, or
// http_directory or http_content known only at run time). The error
// names the keyword.
func Check(command []string, served bool, deferred schema.Deferred) error {
	if deferred.Has("boot_command") {
		return nil
	}
	cmd, err := Parse(command)
	if err != nil {
		return schema.Errorf("boot_command", "%v", err)
	}
	if !served && !deferred.Has("http_content") && !deferred.Has("http_directory") {
		for _, p := range cmd.Uses() {
			if strings.HasPrefix(p, "http_") {
				return schema.Errorf("boot_command", "uses {%s} but no HTTP server runs: set http_directory or http_content", p)
			}
		}
	}
	return nil
}

// Parse parses a boot command given as a list of strings typed one after
// the other (Packer joins boot_command's elements the same way). Errors are
// *SyntaxError values that name the offending markup, where it is, and how
// to write it.
func Parse(elems []string) (*Command, error) {
	s := strings.Join(elems, "")
	fail := func(off int, format string, args ...any) error {
		e := &SyntaxError{Element: -1, Msg: fmt.Sprintf(format, args...)}
		e.Element, e.Column = position(elems, off)
		if len(elems) < 2 {
			e.Element = -1
		}
		return e
	}
	if loc := goTemplateRe.FindStringSubmatchIndex(s); loc != nil {
		whole, name := s[loc[0]:loc[1]], s[loc[2]:loc[3]]
		want := goTemplateNames[name]
		if want == "" {
			want = "one of " + knownPlaceholders()
		}
		return nil, fail(loc[0], "%q is Go template syntax, which boot_command does not use: write %s", whole, want)
	}
	c := &Command{}
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			c.actions = append(c.actions, action{kind: actText, text: text.String()})
			text.Reset()
		}
	}
	var held Modifiers
	for i := 0; i < len(s); {
		ch := s[i]
		switch ch {
		case '<':
			name, n := markupName(s[i:], '<', '>', isKeyNameByte)
			if n == 0 {
				text.WriteByte(ch)
				i++
				continue
			}
			a, err := parseKeyMarkup(name)
			if err != nil {
				return nil, fail(i, "%s", err)
			}
			if a.kind == actText {
				// <lt>, <gt>: typed like text.
				text.WriteString(a.text)
				i += n
				continue
			}
			flush()
			if a.kind == actModifier {
				if a.on == held.Has(a.mod) {
					if a.on {
						return nil, fail(i, "<%s> holds %s, which an earlier <%sOn> already holds", name, a.mod.Name(), a.mod.Name())
					}
					return nil, fail(i, "<%s> releases %s, which is not held: hold it first with <%sOn>", name, a.mod.Name(), a.mod.Name())
				}
				if a.on {
					held |= 1 << a.mod
				} else {
					held &^= 1 << a.mod
				}
			}
			c.actions = append(c.actions, a)
			i += n
		case '{':
			name, n := markupName(s[i:], '{', '}', isPlaceholderByte)
			if n == 0 || (i > 0 && s[i-1] == '$') {
				text.WriteByte(ch)
				i++
				continue
			}
			if _, ok := Placeholders[name]; !ok {
				return nil, fail(i, "unknown placeholder {%s} (known: %s)", name, knownPlaceholders())
			}
			flush()
			c.actions = append(c.actions, action{kind: actPlaceholder, placeholder: name})
			i += n
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if _, _, ok := KeyFor(r); !ok {
				return nil, fail(i, "%s cannot be typed on a US keyboard: write it with markup such as <enter>, or leave it out", describeRune(r))
			}
			text.WriteString(s[i : i+size])
			i += size
		}
	}
	flush()
	if held != 0 {
		var stuck []string
		for _, m := range held.List() {
			stuck = append(stuck, "<"+m.Name()+"Off>")
		}
		sort.Strings(stuck)
		return nil, &SyntaxError{Element: -1, Msg: "boot_command ends with modifiers still held: add " + strings.Join(stuck, " ")}
	}
	return c, nil
}

// position turns a byte offset into the joined elements into the element
// it falls in and a column counted in characters from 1.
func position(elems []string, off int) (elem, col int) {
	for i, e := range elems {
		if off < len(e) || i == len(elems)-1 {
			return i, utf8.RuneCountInString(e[:min(off, len(e))]) + 1
		}
		off -= len(e)
	}
	return 0, off + 1
}

// Uses returns the placeholders the command types, each once, in order.
func (c *Command) Uses() []string {
	var out []string
	for _, a := range c.actions {
		if a.kind == actPlaceholder && !slices.Contains(out, a.placeholder) {
			out = append(out, a.placeholder)
		}
	}
	return out
}

// Empty reports whether the command types nothing and waits for nothing.
func (c *Command) Empty() bool { return len(c.actions) == 0 }

func knownPlaceholders() string {
	names := make([]string, 0, len(Placeholders))
	for n := range Placeholders {
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
func parseKeyMarkup(name string) (action, error) {
	lower := strings.ToLower(name)
	switch lower {
	case "lt":
		return action{kind: actText, text: "<"}, nil
	case "gt":
		return action{kind: actText, text: ">"}, nil
	}
	if strings.HasPrefix(lower, "wait") {
		if m := waitRe.FindStringSubmatch(lower); m != nil {
			secs := 1
			if m[1] != "" {
				n, err := strconv.Atoi(m[1])
				if err != nil || time.Duration(n)*time.Second > MaxWait || n > int(MaxWait/time.Second) {
					return action{}, fmt.Errorf("<%s> waits too long: at most a day", name)
				}
				secs = n
			}
			return action{kind: actWait, wait: time.Duration(secs) * time.Second}, nil
		}
		d, err := time.ParseDuration(lower[len("wait"):])
		if err != nil || d < 0 {
			return action{}, fmt.Errorf("<%s> is not a wait: write <wait> (one second), <wait5> (seconds) or <wait1m30s> (a duration)", name)
		}
		if d > MaxWait {
			return action{}, fmt.Errorf("<%s> waits too long: at most a day", name)
		}
		return action{kind: actWait, wait: d}, nil
	}
	for m := Modifier(0); m < numModifiers; m++ {
		switch lower {
		case strings.ToLower(m.Name()) + "on":
			return action{kind: actModifier, mod: m, on: true}, nil
		case strings.ToLower(m.Name()) + "off":
			return action{kind: actModifier, mod: m, on: false}, nil
		}
	}
	if k, ok := specialKeys[lower]; ok {
		return action{kind: actKey, key: k}, nil
	}
	msg := fmt.Sprintf("unknown key <%s>", name)
	if near := schema.Nearest(lower, keyMarkupNames()); near != "" {
		msg += fmt.Sprintf(" (did you mean <%s>?)", near)
	}
	return action{}, fmt.Errorf("%s; to type the text itself write <lt>%s<gt>", msg, name)
}

// keyMarkupNames lists every <name> the parser knows, for suggestions.
func keyMarkupNames() []string {
	names := []string{"lt", "gt", "wait"}
	for n := range specialKeys {
		names = append(names, n)
	}
	for m := Modifier(0); m < numModifiers; m++ {
		names = append(names, strings.ToLower(m.Name())+"on", strings.ToLower(m.Name())+"off")
	}
	sort.Strings(names)
	return names
}

func describeRune(r rune) string {
	if r < 0x20 || r == 0x7f {
		return fmt.Sprintf("the control character %U", r)
	}
	return fmt.Sprintf("%q", r)
}
