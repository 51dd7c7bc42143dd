package bootcmd

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// typed renders planned steps as a screen would show them: the characters
// typed, <name> for special keys, <ctrl+c> for keys with modifiers other
// than shift, and waits as [5s].
func typed(steps []Step) string {
	var b strings.Builder
	for _, s := range steps {
		if s.Wait > 0 {
			b.WriteString("[" + s.Wait.String() + "]")
			continue
		}
		for _, p := range s.Keys {
			b.WriteString(render(p))
		}
	}
	return b.String()
}

func render(p Press) string {
	var mods []string
	for _, m := range p.Modifiers.List() {
		switch m {
		case LeftCtrl, RightCtrl:
			mods = append(mods, "ctrl")
		case LeftAlt, RightAlt:
			mods = append(mods, "alt")
		case LeftSuper, RightSuper:
			mods = append(mods, "super")
		}
	}
	name := "<" + p.Key.Name() + ">"
	if r, ok := p.Key.Char(p.Modifiers.Shift()); ok && p.Key != KeySpace {
		name = string(r)
	} else if p.Key == KeySpace {
		name = " "
	}
	if len(mods) > 0 {
		return "<" + strings.Join(mods, "+") + "+" + strings.Trim(name, "<>") + ">"
	}
	return name
}

var testVals = map[string]string{"http_ip": "10.0.0.5", "http_port": "8080", "http_url": "http://10.0.0.5:8080", "name": "web", "vm_name": "web"}

func plan(t *testing.T, elems ...string) []Step {
	t.Helper()
	c, err := Parse(elems)
	if err != nil {
		t.Fatalf("%q: %v", elems, err)
	}
	steps, err := c.Plan(testVals)
	if err != nil {
		t.Fatalf("%q: %v", elems, err)
	}
	return steps
}

func TestBootCommandTypesTextKeysModifiersAndWaits(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"<esc><wait>install url={http_url}/ks.cfg<enter>", "<esc>[1s]install url=http://10.0.0.5:8080/ks.cfg<enter>"},
		{"<wait5><wait1m30s><wait250ms>x", "[5s][1m30s][250ms]x"},
		{"Hello, World! ~`_+{}|:\"<>?", "Hello, World! ~`_+{}|:\"<>?"},
		{"<leftCtrlOn>c<leftCtrlOff><leftAltOn><f2><leftAltOff>", "<ctrl+c><alt+f2>"},
		{"<LEFTSHIFTON>a<leftShiftOff>A", "AA"},
		{"<leftCtrlOn><leftAltOn><del><leftAltOff><leftCtrlOff>", "<ctrl+alt+del>"},
		{"a < b and c > d; echo ${HOME} {not a placeholder} <lt>enter<gt>", "a < b and c > d; echo ${HOME} {not a placeholder} <enter>"},
		{"line1\nline2\tx", "line1<enter>line2<tab>x"},
		{"<up><down><left><right><home><end><pageUp><pageDown><insert><bs><tab><spacebar><return><menu><f12>", "<up><down><left><right><home><end><pageUp><pageDown><insert><bs><tab> <enter><menu><f12>"},
		{"hostname={name} vm={vm_name} ip={http_ip} port={http_port}", "hostname=web vm=web ip=10.0.0.5 port=8080"},
	} {
		if got := typed(plan(t, tc.in)); got != tc.want {
			t.Errorf("%q types\n %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestBootCommandElementsAreTypedOneAfterTheOther(t *testing.T) {
	if got := typed(plan(t, "<esc><wait>", "auto url={http_url}/p.cfg", "<enter>")); got != "<esc>[1s]auto url=http://10.0.0.5:8080/p.cfg<enter>" {
		t.Errorf("typed %q", got)
	}
}

func TestBootCommandErrorsSayWhereAndHowToWriteIt(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"<entr>"}, "at character 1: unknown key <entr> (did you mean <enter>?); to type the text itself write <lt>entr<gt>"},
		{[]string{"install <wait5> auto <entr>"}, "at character 22: unknown key <entr> (did you mean <enter>?); to type the text itself write <lt>entr<gt>"},
		{[]string{"<esc><wait>", "linux /vmlinuz <enter>", "initrd /initrd.gz<entr>"}, "element 2, character 18: unknown key <entr> (did you mean <enter>?); to type the text itself write <lt>entr<gt>"},
		{[]string{"ab", "x<wait5x>"}, "element 1, character 2: <wait5x> is not a wait: write <wait> (one second), <wait5> (seconds) or <wait1m30s> (a duration)"},
		{[]string{"url={{ .HTTPIP }}:{{ .HTTPPort }}"}, `at character 5: "{{ .HTTPIP }}" is Go template syntax, which boot_command does not use: write {http_ip}`},
		{[]string{"{{.Foo}}"}, `at character 1: "{{.Foo}}" is Go template syntax, which boot_command does not use: write one of {http_ip}, {http_port}, {http_url}, {name}, {vm_name}`},
		{[]string{"x={http_host}"}, "at character 3: unknown placeholder {http_host} (known: {http_ip}, {http_port}, {http_url}, {name}, {vm_name})"},
		{[]string{"<leftCtrlOn>c"}, "boot_command ends with modifiers still held: add <leftCtrlOff>"},
		{[]string{"<leftAltOff>"}, "at character 1: <leftAltOff> releases leftAlt, which is not held: hold it first with <leftAltOn>"},
		{[]string{"<leftAltOn><leftAltOn>"}, "at character 12: <leftAltOn> holds leftAlt, which an earlier <leftAltOn> already holds"},
		{[]string{"café"}, `at character 4: 'é' cannot be typed on a US keyboard: write it with markup such as <enter>, or leave it out`},
		{[]string{"a\x00b"}, "at character 2: the control character U+0000 cannot be typed on a US keyboard: write it with markup such as <enter>, or leave it out"},
		{[]string{"<wait99999999>"}, "at character 1: <wait99999999> waits too long: at most a day"},
		{[]string{"<wait25h>"}, "at character 1: <wait25h> waits too long: at most a day"},
	} {
		_, err := Parse(tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q:\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
}

func TestAPlaceholderWithoutAValueIsAnErrorWhenPlanned(t *testing.T) {
	c, err := Parse([]string{"{http_ip}"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Uses(); len(got) != 1 || got[0] != "http_ip" {
		t.Errorf("uses %v", got)
	}
	if _, err := c.Plan(map[string]string{"name": "x"}); err == nil || err.Error() != "{http_ip} has no value in this build" {
		t.Errorf("error %v", err)
	}
}

// recorder is a keyboard that writes down what it is given.
type recorder struct {
	calls [][]Press
	at    []time.Time
}

func (r *recorder) Press(ctx context.Context, keys []Press) error {
	r.calls = append(r.calls, keys)
	r.at = append(r.at, time.Now())
	return nil
}

func TestTypeSendsRunsAtOnceOrKeyByKeyWithTheInterval(t *testing.T) {
	steps := plan(t, "ab<wait50ms>c")
	kb := &recorder{}
	var said []string
	n, err := Type(context.Background(), steps, kb, TypeOptions{Say: func(f string, a ...any) { said = append(said, f) }})
	if err != nil || n != 3 || len(kb.calls) != 2 || len(kb.calls[0]) != 2 {
		t.Fatalf("at once: %d keys in %d calls (%v), err %v", n, len(kb.calls), kb.calls, err)
	}
	if len(said) != 2 {
		t.Errorf("said %v", said)
	}
	kb = &recorder{}
	n, err = Type(context.Background(), plan(t, "abc"), kb, TypeOptions{Interval: 20 * time.Millisecond})
	if err != nil || n != 3 || len(kb.calls) != 3 {
		t.Fatalf("key by key: %d keys in %d calls, err %v", n, len(kb.calls), err)
	}
	if gap := kb.at[2].Sub(kb.at[0]); gap < 40*time.Millisecond {
		t.Errorf("three keys 20ms apart took %s", gap)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Type(ctx, plan(t, "<wait1m>x"), &recorder{}, TypeOptions{}); err == nil {
		t.Error("a cancelled context did not stop the wait")
	}
}

// FuzzBootCommand checks that the parser never panics, that whatever it
// accepts can be planned and typed, that every error says where it is, and
// that text without markup types itself.
func FuzzBootCommand(f *testing.F) {
	for _, s := range []string{
		"<esc><wait>install url={http_url}/ks.cfg<enter>", "<leftCtrlOn>c<leftCtrlOff>", "a < b", "{{ .HTTPIP }}",
		"<wait1m30s>", "${HOME}", "<lt>x<gt>", "<leftShiftOn>", "{", "<", "<>", "{}", "\n\t", "é", "<wait0s>", "{name}",
	} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, cut int) {
		// The same command as one string and split in two elements.
		elems := []string{s}
		if cut > 0 && cut < len(s) {
			elems = []string{s[:cut], s[cut:]}
		}
		c, err := Parse(elems)
		if err != nil {
			se, ok := err.(*SyntaxError)
			if !ok || se.Msg == "" {
				t.Fatalf("%q: error %#v", elems, err)
			}
			if se.Column != 0 && (se.Element >= len(elems) || se.Column > utf8.RuneCountInString(elems[max(se.Element, 0)])+1) {
				t.Fatalf("%q: position %d:%d is outside the command", elems, se.Element, se.Column)
			}
			return
		}
		steps, err := c.Plan(testVals)
		if err != nil {
			t.Fatalf("%q parsed but does not plan: %v", s, err)
		}
		keys := 0
		for _, st := range steps {
			if st.Wait < 0 || st.Wait > MaxWait {
				t.Fatalf("%q: wait %s", s, st.Wait)
			}
			for _, k := range st.Keys {
				if k.Key == 0 {
					t.Fatalf("%q: key code 0", s)
				}
			}
			keys += len(st.Keys)
		}
		if !strings.ContainsAny(s, "<{") {
			want := strings.NewReplacer("\n", "<enter>", "\t", "<tab>").Replace(s)
			if got := typed(steps); got != want {
				t.Fatalf("%q types %q", s, got)
			}
			if keys != utf8.RuneCountInString(s) {
				t.Fatalf("%q: %d keys for %d characters", s, keys, utf8.RuneCountInString(s))
			}
		}
	})
}
