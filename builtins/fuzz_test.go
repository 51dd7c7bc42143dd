package builtins

import (
	"os"
	"path/filepath"
	"testing"
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
