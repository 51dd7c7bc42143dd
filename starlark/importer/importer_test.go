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

// TestImportNeverSetsAKeywordTwice: two Packer keys that map onto one
// keyword (Packer refuses playbook_file with playbook_files) keep the first
// and make the second a TODO with a warning, so the call stays valid.
func TestImportNeverSetsAKeywordTwice(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.pkr.hcl")
	src := "source \"null\" \"a\" {\n  ssh_host = \"h\"\n}\nbuild {\n  sources = [\"source.null.a\"]\n" +
		"  provisioner \"ansible-local\" {\n    playbook_file  = \"a.yml\"\n    playbook_files = [\"b.yml\"]\n  }\n}\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Import(p, Options{Builtins: fuzzBuiltins})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.Source)
	if want := `ansible_local(playbook_file = "a.yml")`; !strings.Contains(out, want) || !strings.Contains(out, `# TODO(import): playbook_files = ["b.yml"]`) {
		t.Errorf("the description lacks %s and the TODO:\n%s", want, out)
	}
	if want := p + `:8:5: playbook_files would set ansible_local() keyword playbook_file a second time; written as a TODO(import) comment`; len(res.Warnings) != 1 || res.Warnings[0] != want {
		t.Errorf("warnings %q, want [%q]", res.Warnings, want)
	}
}
