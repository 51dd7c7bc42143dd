package host

import (
	"strings"
	"testing"
)

// FuzzParseMod: whatever the text, ParseMod returns declarations or an
// error, never panics nor hangs; every dependency it accepts passes
// CheckDep and has a position in the file.
func FuzzParseMod(f *testing.F) {
	f.Add([]byte("module(name = \"a\")\ndep(\"b\", git = \"git@h:o/r.git\", ref = \"v1\", path = \"m\")\n"))
	f.Add([]byte("dep(\"c\", url = \"https://h/c.tar.gz\", sha256 = \"" + strings.Repeat("0", 64) + "\")\ndep(\"d\", path = \"../d\")\n"))
	f.Add([]byte("state(location = \"s3://b/p\")\nfor i in range(3):\n    dep(\"x%d\" % i, path = \"x\")\n"))
	f.Add([]byte("while True:\n    pass\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		m, err := ParseMod(ModFile, src)
		if err != nil {
			return
		}
		names := map[string]bool{}
		for _, d := range m.Deps {
			if err := CheckDep(d); err != nil {
				t.Errorf("accepted a bad dep %+v: %v", d, err)
			}
			if names[d.Name] {
				t.Errorf("accepted %q twice", d.Name)
			}
			names[d.Name] = true
			if !strings.HasPrefix(d.Pos, ModFile+":") {
				t.Errorf("dep %q has position %q", d.Name, d.Pos)
			}
		}
		if m.Name != "" && !ValidName(m.Name) {
			t.Errorf("accepted module name %q", m.Name)
		}
	})
}
