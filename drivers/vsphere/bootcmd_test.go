package vsphere

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/imgbuild/imgbuild/drivers/vsphere/vcsimtest"
)

// typed renders planned steps as a console shows them, with vcsimtest's
// decoder (written apart from our encoder), and waits as [5s].
func typed(steps []bootStep) string {
	var b strings.Builder
	for _, s := range steps {
		if s.Wait > 0 {
			b.WriteString("[" + s.Wait.String() + "]")
			continue
		}
		for _, e := range usbEvents(s.Keys) {
			b.WriteString(vcsimtest.DecodeKey(e))
		}
	}
	return b.String()
}

var testVals = map[string]string{"http_ip": "10.0.0.5", "http_port": "8080", "http_url": "http://10.0.0.5:8080", "vm_name": "web"}

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
		{"hostname={vm_name} ip={http_ip} port={http_port}", "hostname=web ip=10.0.0.5 port=8080"},
	} {
		actions, err := parseBootCommand(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		steps, err := planBootCommand(actions, testVals)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := typed(steps); got != tc.want {
			t.Errorf("%q types\n %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestBootCommandErrorsSayHowToWriteIt(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"<entr>", "unknown key <entr> (did you mean <enter>?); to type the text itself write <lt>entr<gt>"},
		{"url={{ .HTTPIP }}:{{ .HTTPPort }}", `"{{ .HTTPIP }}" is Go template syntax, which boot_command does not use: write {http_ip}`},
		{"{{.Foo}}", `"{{.Foo}}" is Go template syntax, which boot_command does not use: write one of {http_ip}, {http_port}, {http_url}, {vm_name}`},
		{"{http_host}", "unknown placeholder {http_host} (known: {http_ip}, {http_port}, {http_url}, {vm_name})"},
		{"<leftCtrlOn>c", "boot_command ends with modifiers still held: add <leftCtrlOff>"},
		{"<leftAltOff>", "<leftAltOff> releases leftAlt, which is not held: hold it first with <leftAltOn>"},
		{"<leftAltOn><leftAltOn>", "<leftAltOn> holds leftAlt, which an earlier <leftAltOn> already holds"},
		{"café", `'é' cannot be typed on a US keyboard: write it with markup such as <enter>, or leave it out`},
		{"a\x00b", "the control character U+0000 cannot be typed on a US keyboard: write it with markup such as <enter>, or leave it out"},
		{"<wait99999999>", "<wait99999999> waits too long: at most a day"},
		{"<wait5x>", "<wait5x> is not a wait: write <wait> (one second), <wait5> (seconds) or <wait1m30s> (a duration)"},
	} {
		_, err := parseBootCommand(tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q:\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
	// A placeholder without a value in this build (no HTTP server).
	actions, _ := parseBootCommand("{http_ip}")
	if _, err := planBootCommand(actions, map[string]string{"vm_name": "x"}); err == nil || err.Error() != "{http_ip} has no value in this build" {
		t.Errorf("error %v", err)
	}
}

// FuzzBootCommand checks that the parser never panics, that whatever it
// accepts can be planned and typed, and that text without markup types
// itself.
func FuzzBootCommand(f *testing.F) {
	for _, s := range []string{
		"<esc><wait>install url={http_url}/ks.cfg<enter>", "<leftCtrlOn>c<leftCtrlOff>", "a < b", "{{ .HTTPIP }}",
		"<wait1m30s>", "${HOME}", "<lt>x<gt>", "<leftShiftOn>", "{", "<", "<>", "{}", "\n\t", "é", "<wait0s>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		actions, err := parseBootCommand(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("%q: empty error", s)
			}
			return
		}
		steps, err := planBootCommand(actions, testVals)
		if err != nil {
			t.Fatalf("%q parsed but does not plan: %v", s, err)
		}
		keys := 0
		for _, st := range steps {
			if st.Wait < 0 || st.Wait > 24*time.Hour {
				t.Fatalf("%q: wait %s", s, st.Wait)
			}
			for _, k := range st.Keys {
				if k.Code == 0 {
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
