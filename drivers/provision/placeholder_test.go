package provision

import (
	"strings"
	"testing"
)

func TestExpandPlaceholders(t *testing.T) {
	vals := map[string]string{"path": "'/tmp/a b.sh'", "vars": "export A='{path}'; "}
	for _, tc := range []struct{ in, want string }{
		{"chmod +x {path}; {vars}{path}", "chmod +x '/tmp/a b.sh'; export A='{path}'; '/tmp/a b.sh'"},
		{"echo ${path} {a,b} { x; } {} {1} {Path", "echo ${path} {a,b} { x; } {} {1} {Path"},
		{"{path}{path}", "'/tmp/a b.sh''/tmp/a b.sh'"},
		{"", ""},
	} {
		got, err := ExpandPlaceholders(tc.in, vals)
		if err != nil || got != tc.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzExpandPlaceholders checks that expansion never panics, changes
// nothing but the placeholders, and never expands a replacement again: put
// the placeholders back in place of unique markers and the template comes
// back.
func FuzzExpandPlaceholders(f *testing.F) {
	for _, s := range []string{DefaultExecuteCommand, "{vars}sudo -E {path}", "${path}", "{{.Path}}", "{x}", "{", "}{path", "$$ {path}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tmpl string) {
		if strings.ContainsAny(tmpl, "\x00\x01") {
			return
		}
		got, err := ExpandPlaceholders(tmpl, map[string]string{"path": "\x00{vars}\x00", "vars": "\x01{path}\x01"})
		if err != nil {
			if !strings.Contains(tmpl, "{") {
				t.Fatalf("error without a brace: %v", err)
			}
			return
		}
		back := strings.NewReplacer("\x00{vars}\x00", "{path}", "\x01{path}\x01", "{vars}").Replace(got)
		if back != tmpl {
			t.Fatalf("expand(%q) = %q, which does not map back (%q)", tmpl, got, back)
		}
	})
}
