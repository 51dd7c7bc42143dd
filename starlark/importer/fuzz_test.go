package importer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bazelbuild/buildtools/build"

	"github.com/imgbuild/imgbuild/starlark/host"
)

// fuzzBuiltins is a small stand-in for the registry's keywords.
var fuzzBuiltins = map[string]map[string]string{
	"null":       {"name": "list", "ssh_host": "string", "ssh_port": "int", "provisioners": "list", "error_cleanup": "list", "post": "list"},
	"amazon_ebs": {"name": "list", "region": "string", "source_ami": "string", "launch_block_device_mappings": "list of dict", "metadata_options": "dict"},
	"shell":      {"inline": "list of string", "env": "dict of string", "execute_command": "string", "script": "string"},
	"manifest":   {"output": "string"},
	"aws_ami":    {"owners": "list of string", "name": "string"},
	"ansible": {"playbook_file": "string", "roles_path": "list of string", "ansible_env_vars": "dict of string",
		"extra_arguments": "list of string", "use_proxy": "bool", "only": "list of string"},
	"ansible_local": {"playbook_file": "string", "inventory_groups": "list of string", "playbook_dir": "string"},
	"puppet_apply":  {"manifest_file": "string", "execute_command": "string", "valid_exit_codes": "list of int", "facter": "dict of string"},
	"chef_solo":     {"cookbook_paths": "list of string", "execute_command": "string", "install_command": "string", "json": "dict"},
}

func fuzzImport(t *testing.T, name, src string) {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Import(p, Options{Builtins: fuzzBuiltins})
	if err != nil {
		return
	}
	if res.TODOs != len(res.Warnings) {
		t.Fatalf("%d TODOs but %d warnings", res.TODOs, len(res.Warnings))
	}
	// What import writes is Starlark in the descriptions' dialect.
	if _, err := host.FileOptions.Parse("images.star", res.Source, 0); err != nil {
		t.Fatalf("the description does not parse: %v\n%s", err, res.Source)
	}
	// ... formatted as imgbuild fmt formats it.
	f, err := build.ParseDefault("images.star", res.Source)
	if err != nil {
		t.Fatalf("buildtools does not parse the description: %v\n%s", err, res.Source)
	}
	if again := build.Format(f); string(again) != string(res.Source) {
		t.Fatalf("the description is not formatted; formatted:\n%s\nwritten:\n%s", again, res.Source)
	}
}

// FuzzImportHCL imports arbitrary HCL templates: a description or an
// error, never a panic, and one warning per TODO.
func FuzzImportHCL(f *testing.F) {
	for _, s := range []string{
		"variable \"a\" {\n type = list(string)\n default = [\"x\"]\n validation {\n condition = length(var.a) > 0\n error_message = \"e\"\n }\n}\n",
		"locals {\n a = \"${var.b}-${timestamp()}\"\n b = local.a\n}\n",
		"source \"null\" \"a\" {\n ssh_host = \"h\"\n}\nbuild {\n sources = [\"source.null.a\"]\n provisioner \"shell\" {\n inline = [for x in [1, 2] : \"echo ${x}\"]\n only = [\"null.a\"]\n }\n}\n",
		"source \"amazon-ebs\" \"a\" {\n dynamic \"launch_block_device_mappings\" {\n for_each = [1]\n content {\n volume_size = launch_block_device_mappings.value\n }\n }\n}\nbuild {\n sources = [\"source.amazon-ebs.a\"]\n}\n",
		"data \"amazon-ami\" \"x\" {\n filters = { name = \"d*\" }\n owners = [\"1\"]\n}\n",
		"build {\n source \"source.null.missing\" { name = \"n\" }\n}\n",
		"source \"null\" \"a\" {\n ssh_host = \"h\"\n}\nsource \"null\" \"b\" {}\nbuild {\n sources = [\"null.a\", \"null.b\"]\n" +
			" provisioner \"ansible\" {\n playbook_file = \"p.yml\"\n roles_path = \"r:s\"\n ansible_env_vars = [\"A=${source.name}\"]\n use_sftp = true\n}\n" +
			" provisioner \"ansible-local\" {\n playbook_files = [\"l.yml\"]\n inventory_groups = \"a,b\"\n group_vars = \"g\"\n}\n" +
			" provisioner \"puppet-masterless\" {\n manifest_file = \"s.pp\"\n prevent_sudo = true\n ignore_exit_codes = true\n" +
			" execute_command = \"cd {{.WorkingDir}} && {{.FacterVars}} {{if .Sudo}}sudo -E {{end}}puppet apply {{.ExtraArguments}} {{.ManifestFile}}\"\n" +
			" override = { \"null.b\" = { puppet_bin_dir = \"/opt\" } }\n}\n" +
			" provisioner \"chef-solo\" {\n cookbook_paths = [\"c\"]\n prevent_sudo = false\n" +
			" install_command = \"curl | {{if .Sudo}}sudo{{end}} bash -s --{{if .Version}} -v {{.Version}}{{end}}\"\n execute_command = \"{{if .Debug}}x{{end}}\"\n}\n}\n",
		"source \"null\" \"a\" {\n ssh_host = \"h\"\n}\nbuild {\n sources = [\"null.a\"]\n error-cleanup-provisioner \"shell\" {\n inline = [\"df\"]\n except = [\"null.b\"]\n }\n error-cleanup-provisioner \"shell\" {}\n}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) { fuzzImport(t, "t.pkr.hcl", src) })
}

// FuzzImportJSON imports arbitrary legacy JSON templates.
func FuzzImportJSON(f *testing.F) {
	for _, s := range []string{
		`{"variables": {"a": "{{env ` + "`A`" + `}}"}, "builders": [{"type": "null", "ssh_host": "{{user ` + "`a`" + `}}"}]}`,
		`{"builders": [{"type": "amazon-ebs", "name": "x", "region": "{{timestamp}}"}], "provisioners": [{"type": "shell", "only": ["x"], "inline": ["{{isotime \"2006\"}}"]}], "post-processors": [["manifest", {"type": "compress"}]]}`,
		`{"builders": [{"type": "null", "ssh_host": "{{ .Bad }}{{"}]}`,
		`{"builders": [{"type": "null"}], "error-cleanup-provisioner": {"type": "shell", "inline": ["{{build_name}}"]}}`,
		`{"builders": [{"type": "null"}], "error-cleanup-provisioner": [1]}`,
		`{"builders": [{"type": "null"}], "provisioners": [{"type": "ansible-local", "playbook_file": "p.yml", "inventory_groups": "a,b"}, {"type": "chef-solo", "prevent_sudo": "true", "execute_command": "{{if .Sudo}}sudo {{end}}chef-solo -c {{.ConfigPath}} -j {{.JsonPath}}"}, {"type": "puppet-masterless", "ignore_exit_codes": "maybe"}]}`,
		`{"builders": []}`, `[]`, `{`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) { fuzzImport(t, "t.json", src) })
}
