package redact

import (
	"strings"
	"testing"
)

func TestRedactHidesEveryFormOfASecret(t *testing.T) {
	var s Set
	s.Add("Zq7-tok3n", "", `pa"ss`+"\n1")
	cases := []struct{ in, want string }{
		{"the token is Zq7-tok3n.", "the token is (sensitive)."},
		{`"Zq7-tok3n" is not a duration`, "(sensitive) is not a duration"},
		{`"out-Zq7-tok3n" is not valid`, `"out-(sensitive)" is not valid`},
		{`value "pa\"ss\n1" is bad`, "value (sensitive) is bad"},
		{`in "x-pa\"ss\n1-y"`, `in "x-(sensitive)-y"`},
		{"last lines: curl -H Zq7-to…", "last lines: curl -H (sensitive)…"},
		{"cut… twice Zq7…", "cut… twice (sensitive)…"},
		{"nothing secret…", "nothing secret…"},
		{"Downloading Z…", "Downloading Z…"}, // one or two bytes of a secret are left alone
	}
	for _, c := range cases {
		if got := s.Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	var none *Set
	if none.Redact("x") != "x" {
		t.Error("a nil set changed the text")
	}
}

func TestASecretHoldingAnotherIsHiddenWhole(t *testing.T) {
	var s Set
	s.Add("tok")
	s.Add("tok-longer")
	if got := s.Redact("use tok-longer and tok"); got != "use (sensitive) and (sensitive)" {
		t.Errorf("got %q", got)
	}
}

func TestSafeCutNeverSplitsASecret(t *testing.T) {
	var s Set
	s.Add("Zq7-tok3n")
	text := []byte(strings.Repeat("x", 10) + "Zq7-to")
	if cut := s.SafeCut(text, len(text)); cut != 10 {
		t.Errorf("cut at %d, want 10 (before the secret's start)", cut)
	}
	if cut := s.SafeCut([]byte(strings.Repeat("x", 20)), 16); cut != 16 {
		t.Errorf("cut at %d with no secret near, want 16", cut)
	}
	if cut := s.SafeCut([]byte("Zq7-to"), 6); cut != 6 {
		t.Errorf("a line that is only a secret's start is cut at %d, want 6 (never 0)", cut)
	}
	if cut := (*Set)(nil).SafeCut([]byte("aé"), 2); cut != 1 {
		t.Errorf("cut inside a rune: %d", cut)
	}
}
