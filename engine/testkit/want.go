package testkit

import (
	"strings"
	"testing"
)

// WantIn fails the test unless s, a message or output named what in the
// failure, holds every one of wants; it reports each one missing.
func WantIn(t testing.TB, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}
