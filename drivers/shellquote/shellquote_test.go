package shellquote

import (
	"os/exec"
	"strings"
	"testing"
)

var hostile = []string{
	"", "plain", "it's", `"double"`, "$(touch /tmp/pwned)", "`id`", "a\nb", "tab\there", "back\\slash",
	"$HOME", "${x:-y}", "; rm -rf /", "héllo wörld ✓", "'''", "-n", "*", "~root", "!!",
}

// shellRoundTrip has /bin/sh print the value the way it received it.
func shellRoundTrip(t testing.TB, env map[string]string, name string) string {
	prefix, err := Env(env)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/sh", "-c", prefix+`printf %s "$`+name+`"`).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	return string(out)
}

func TestEnvValuesReachTheShellExactly(t *testing.T) {
	for _, v := range hostile {
		if got := shellRoundTrip(t, map[string]string{"V": v, "OTHER": "x"}, "V"); got != v {
			t.Errorf("%q arrived as %q", v, got)
		}
	}
}

func TestQuoteMakesOneWord(t *testing.T) {
	for _, v := range hostile {
		out, err := exec.Command("/bin/sh", "-c", `printf '%s|' `+Quote(v)).Output()
		if err != nil || string(out) != v+"|" {
			t.Errorf("Quote(%q) = %s gave %q, %v", v, Quote(v), out, err)
		}
	}
}

func TestBadNamesAreRefused(t *testing.T) {
	_, err := Env(map[string]string{"1X": "v"})
	if err == nil || err.Error() != `"1X" is not a valid environment variable name (letters, digits and _, not starting with a digit)` {
		t.Errorf("err = %v", err)
	}
}

func FuzzQuote(f *testing.F) {
	for _, v := range hostile {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if strings.ContainsRune(v, 0) {
			return // no shell argument can hold NUL
		}
		if got := shellRoundTrip(t, map[string]string{"V": v}, "V"); got != v {
			t.Errorf("%q arrived as %q", v, got)
		}
	})
}
