package builtins

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/redact"
	"github.com/imgbuild/imgbuild/engine/value"
)

// FuzzReadVarFile reads arbitrary var-files, as JSON and as .star: an
// error or values, never a panic.
func FuzzReadVarFile(f *testing.F) {
	for _, s := range []string{`{"a": 1, "b": [true, null], "c": {"d": "e"}}`, `a = 1` + "\n" + `b = [1, "x"]`, `{`, `[]`, `a = f()`, `{"a": 1e400}`, "a = \"x\"\nb = [1, { c = true }]\n", "a = var.b", `{"a": 1, "a": 2}`} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src string) {
		for _, name := range []string{"v.json", "v.star", "v.pkrvars.hcl"} {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			vars, err := ReadVarFile(p)
			if err != nil {
				continue
			}
			for k, v := range vars {
				if !varName.MatchString(k) && name != "v.star" && name != "v.pkrvars.hcl" {
					t.Fatalf("accepted bad name %q", k)
				}
				if v.JSON != nil {
					if _, err := fromJSON(v.JSON); err != nil {
						t.Fatalf("value of %q does not convert: %v", k, err)
					}
				}
			}
		}
	})
}

// FuzzSensitiveReadBack formats a secret into arbitrary text and reads it
// back: the setting holds the real value, marked sensitive, or the text is
// refused (when it forges a marker); what the evaluation shows never holds
// the secret.
func FuzzSensitiveReadBack(f *testing.F) {
	f.Add("token = ", "!", "Zq7-secret")
	f.Add("⟦imgbuild-sensitive-", "⟧", "ZQ")
	f.Add("${base.id}/", "", "p@ss w0rd")
	f.Fuzz(func(t *testing.T, before, after, secret string) {
		if secret == "" || strings.ContainsAny(secret, redact.Mask+markOpen+markClose) {
			return // the mask itself would show it
		}
		tab := newSensitive(func(b string) bool { return b == "base" })
		s := tab.declare(secret)
		text := before + s.String() + after
		v, err := tab.setting(text)
		if err == nil {
			if str, ok := v.(value.String); ok && (!str.Sensitive || str.S != before+secret+after) {
				t.Fatalf("setting(%q) = %#v", text, v)
			}
		}
		if shown := tab.Redact(text); strings.Contains(shown, secret) {
			t.Fatalf("Redact(%q) = %q shows the secret", text, shown)
		}
	})
}
