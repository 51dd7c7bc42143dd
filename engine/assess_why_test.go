package engine_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine"
)

// why is engine.Why between a build recorded with the step fields old and
// the same build with cur.
func why(old, cur map[string]string) []string {
	step := func(f map[string]string) *engine.Inputs {
		return &engine.Inputs{Driver: "qemu", Settings: map[string]string{}, Steps: []engine.StepInputs{{List: "provisioners", Kind: "shell", Fields: f}}}
	}
	prev := step(old)
	return engine.Why(&engine.BuildState{Inputs: prev, Fingerprint: prev.Fingerprint()}, step(cur))
}

func TestAChangePastTheFirst80CharactersIsShownAndNotTakenForASecret(t *testing.T) {
	// The quickstart's qemu() provisioner: a long inline list whose last
	// line changed.
	head := `["systemctl is-active nginx", "exec 3<>/dev/tcp/127.0.0.1/80 && printf 'GET / HTTP/1.0' >&3", `
	got := why(map[string]string{"inline": head + `"echo release > /etc/quickstart-release"]`},
		map[string]string{"inline": head + `"echo release changed > /etc/quickstart-release"]`})
	want := `provisioners[0] shell: inline: …>&3", "echo release > /etc/quickstart-release"] → …>&3", "echo release changed > /etc/quickstart-release"]`
	if !slices.Contains(got, want) {
		t.Errorf("Why = %q; want it to hold\n%q", got, want)
	}
	for _, r := range got {
		if strings.Contains(r, "secret") {
			t.Errorf("a change of a value that holds no secret is shown as %q", r)
		}
	}
}

func TestAChangedSecretIsShownAsOneWithoutItsDigest(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, c := range []struct{ old, cur string }{
		{"token=(sensitive hmac:0a1b)", "token=(sensitive hmac:2c3d)"},
		{long + " (sensitive hmac:0a1b)", long + " (sensitive hmac:2c3d)"},
	} {
		got := why(map[string]string{"env": c.old}, map[string]string{"env": c.cur})
		if want := []string{"provisioners[0] shell: env: a secret changed"}; !slices.Equal(got, want) {
			t.Errorf("Why(%q → %q) = %q; want %q", c.old, c.cur, got, want)
		}
	}
	// A secret and a plain part that both changed: the plain change shows,
	// the secret as (sensitive).
	got := why(map[string]string{"env": "A=1 token=(sensitive hmac:0a1b)"}, map[string]string{"env": "A=2 token=(sensitive hmac:2c3d)"})
	if want := "provisioners[0] shell: env: A=1 token=(sensitive) → A=2 token=(sensitive)"; !slices.Contains(got, want) {
		t.Errorf("Why = %q; want it to hold %q", got, want)
	}
}
