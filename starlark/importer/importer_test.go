package importer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/starlark/host"
)

// importSource imports src written as t.pkr.hcl in a new directory and
// returns the template's path and what Import made.
func importSource(t *testing.T, src string) (string, *Result) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "t.pkr.hcl")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Import(p, Options{Builtins: fuzzBuiltins})
	if err != nil {
		t.Fatal(err)
	}
	return p, res
}

// TestImportKeepsNonASCIITextAsItIs imports strings with accents, a
// symbol, an escape HCL spells \u and a control character: the description
// holds the text itself (buildtools alone writes each byte above 0x7f as
// an octal escape, which Starlark refuses) and parses as a description.
func TestImportKeepsNonASCIITextAsItIs(t *testing.T) {
	src := "locals {\n  motd = \"héllo ✓ ${\"\\u00e9\"}\\u0001\"\n}\n" +
		"source \"null\" \"a\" {\n  ssh_host = \"h\"\n}\nbuild {\n  sources = [\"source.null.a\"]\n" +
		"  provisioner \"shell\" {\n    inline = [\"echo '${local.motd}' — done\"]\n  }\n}\n"
	_, res := importSource(t, src)
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
	src := "source \"null\" \"a\" {\n  ssh_host = \"h\"\n}\nbuild {\n  sources = [\"source.null.a\"]\n" +
		"  provisioner \"ansible-local\" {\n    playbook_file  = \"a.yml\"\n    playbook_files = [\"b.yml\"]\n  }\n}\n"
	p, res := importSource(t, src)
	out := string(res.Source)
	if want := `ansible_local(playbook_file = "a.yml")`; !strings.Contains(out, want) || !strings.Contains(out, `# TODO(import): playbook_files = ["b.yml"]`) {
		t.Errorf("the description lacks %s and the TODO:\n%s", want, out)
	}
	if want := p + `:8:5: playbook_files would set ansible_local() keyword playbook_file a second time; written as a TODO(import) comment`; len(res.Warnings) != 1 || res.Warnings[0] != want {
		t.Errorf("warnings %q, want [%q]", res.Warnings, want)
	}
}

// TestFirmwareBesideQemuargsThatAreNotALiteralList: Packer's firmware
// goes into qemu_args with qemuargs, so when qemuargs cannot be mapped
// firmware is a TODO too, saying what to write by hand.
func TestFirmwareBesideQemuargsThatAreNotALiteralList(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.pkr.hcl")
	src := "variable \"args\" {\n  type = list(list(string))\n  default = []\n}\n" +
		"source \"qemu\" \"a\" {\n  iso_url = \"a.iso\"\n  iso_checksum = \"none\"\n  firmware = \"/usr/share/qemu/bios.bin\"\n  qemuargs = var.args\n}\n" +
		"build {\n  sources = [\"source.qemu.a\"]\n}\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	qemu := map[string]map[string]string{"qemu": {"name": "list", "iso_url": "string", "iso_checksum": "string", "qemu_args": "list of string", "provisioners": "list", "error_cleanup": "list", "post": "list"}}
	res, err := Import(p, Options{Builtins: qemu})
	if err != nil {
		t.Fatal(err)
	}
	want := p + `:8:3: firmware is not mapped beside qemuargs that are not a literal list of lists: add "-bios" and the file to qemu_args; written as a TODO(import) comment`
	found := false
	for _, w := range res.Warnings {
		found = found || w == want
	}
	if !found {
		t.Errorf("warnings %q lack %q", res.Warnings, want)
	}
	if out := string(res.Source); strings.Contains(out, "-bios") {
		t.Errorf("-bios was written though qemuargs were not mapped:\n%s", out)
	}
}
