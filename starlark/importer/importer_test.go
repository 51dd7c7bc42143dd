package importer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/starlark/host"
)

// TestImportKeepsNonASCIITextAsItIs imports strings with accents, a
// symbol, an escape HCL spells \u and a control character: the description
// holds the text itself (buildtools alone writes each byte above 0x7f as
// an octal escape, which Starlark refuses) and parses as a description.
func TestImportKeepsNonASCIITextAsItIs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.pkr.hcl")
	src := "locals {\n  motd = \"héllo ✓ ${\"\\u00e9\"}\\u0001\"\n}\n" +
		"source \"null\" \"a\" {\n  ssh_host = \"h\"\n}\nbuild {\n  sources = [\"source.null.a\"]\n" +
		"  provisioner \"shell\" {\n    inline = [\"echo '${local.motd}' — done\"]\n  }\n}\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Import(p, Options{Builtins: fuzzBuiltins})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.Source)
	for _, want := range []string{`motd = "héllo ✓ é\001"`, `"echo '" + motd + "' — done"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the description lacks %s:\n%s", want, out)
		}
	}
	if _, err := host.FileOptions.Parse("images.star", res.Source, 0); err != nil {
		t.Errorf("the description does not parse: %v\n%s", err, out)
	}
}
