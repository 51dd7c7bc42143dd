package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// importCase copies a corpus case into a fresh directory and imports its
// template there: template.pkr.hcl, template.json, or the directory.
func importCase(t *testing.T, name string) (dir, stderr string) {
	t.Helper()
	dir = t.TempDir()
	copyDir(t, filepath.Join(repoRoot(t), "testdata", "import", name), dir)
	template := "."
	for _, f := range []string{"template.pkr.hcl", "template.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			template = f
		}
	}
	code, out, errOut := imgbuild(t, dir, "import", template, "-o", "images.star")
	if code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	return dir, errOut
}

// golden compares got with testdata/import/<name>/<file>, or rewrites it
// with -update.
func golden(t *testing.T, name, file, got string) {
	t.Helper()
	testkit.Golden(t, file, filepath.Join(repoRoot(t), "testdata", "import", name, file), got, *update)
}

// TestImportCorpus imports every template of testdata/import, compares
// the description, the warnings and the plan with the golden files, and
// checks that the plan has one build per source the build blocks name.
func TestImportCorpus(t *testing.T) {
	cases := map[string]int{"hcl-null": 2, "hcl-aws": 2, "hcl-dir": 2, "json-legacy": 2, "hcl-cfgmgmt": 2, "hcl-clone": 2, "hcl-qemu-iso": 1, "hcl-qemu-firmware": 4}
	for name, builds := range cases {
		t.Run(name, func(t *testing.T) {
			dir, stderr := importCase(t, name)
			src, err := os.ReadFile(filepath.Join(dir, "images.star"))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name, "want.star", string(src))
			golden(t, name, "want.stderr", stderr)
			args, _ := os.ReadFile(filepath.Join(dir, "args.txt"))
			if code, out, errOut := imgbuild(t, dir, append([]string{"validate", "images.star"}, strings.Fields(string(args))...)...); code != 0 {
				t.Fatalf("validate: exit %d\n%s%s", code, out, errOut)
			}
			code, out, errOut := imgbuild(t, dir, append([]string{"plan", "images.star"}, strings.Fields(string(args))...)...)
			if code != 0 {
				t.Fatalf("plan: exit %d\n%s%s", code, out, errOut)
			}
			golden(t, name, "want.plan", out)
			if want := fmt.Sprintf("Plan: %d build", builds); !strings.HasPrefix(out, want) {
				t.Errorf("plan does not start with %q", want)
			}
			if code, _, errOut := imgbuild(t, dir, "fmt", "--check", "images.star"); code != 0 {
				t.Errorf("the import is not formatted as imgbuild fmt formats: %s", errOut)
			}
		})
	}
}

// TestImportedNullTemplateRunsAgainstSSHD runs the imported hcl-null
// corpus end to end against a real sshd: every provisioner, only/except
// and the override, the var-file's strings converted, the manifest.
func TestImportedNullTemplateRunsAgainstSSHD(t *testing.T) {
	srv := sshtest.Start(t)
	dir, _ := importCase(t, "hcl-null")
	out := t.TempDir()
	code, stdout, stderr := imgbuild(t, dir, "run", "images.star", "--no-color", "--var-file", "null.pkrvars.hcl",
		"--var", fmt.Sprintf("ssh_port=%d", srv.Port), "--var", "ssh_username="+srv.User,
		"--var", "ssh_private_key_file="+srv.ClientKeyFile, "--var", "ssh_host_key="+srv.HostKeyFingerprint, "--var", "out_dir="+out)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, stdout, stderr)
	}
	read := func(f string) string {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Errorf("%v", err)
		}
		return string(b)
	}
	if got := read("greeting-primary"); got != "HELLO "+strings.ToUpper(srv.User)+"\ntrue\n" {
		t.Errorf("greeting-primary = %q (the var-file's \"true\" should be a bool)", got)
	}
	if got := read("motd-secondary"); got != "Welcome to an imported machine.\n" {
		t.Errorf("motd-secondary = %q", got)
	}
	if got := read("release-primary"); !strings.HasPrefix(got, "app-1.5.0-") {
		t.Errorf("release-primary = %q, want app-1.5.0-<stamp>", got)
	}
	if got := read("role-secondary"); got != "overridden\n" {
		t.Errorf("role-secondary = %q, want the override", got)
	}
	if _, err := os.Stat(filepath.Join(out, "release-secondary")); err == nil {
		t.Errorf("the only = [null.primary] provisioner ran in null.secondary")
	}
	if _, err := os.Stat(filepath.Join(dir, "output", "manifest.json")); err != nil {
		t.Errorf("no manifest: %v", err)
	}
}

// sshdTemplate is the start of a template for a test against sshtest's
// sshd: the variables sshdVars sets and a null source of that name.
func sshdTemplate(source string) string {
	return `
variable "port" { type = number }
variable "user" { type = string }
variable "key" { type = string }
variable "host_key" { type = string }
variable "out" { type = string }

source "null" "` + source + `" {
  ssh_host             = "127.0.0.1"
  ssh_port             = var.port
  ssh_username         = var.user
  ssh_private_key_file = var.key
  ssh_host_key         = var.host_key
}
`
}

// sshdVars are the --var flags for sshdTemplate: srv's address and keys,
// and out, a directory the provisioners write into.
func sshdVars(srv *sshtest.Server, out string) []string {
	return []string{"--var", fmt.Sprintf("port=%d", srv.Port), "--var", "user=" + srv.User, "--var", "key=" + srv.ClientKeyFile,
		"--var", "host_key=" + srv.HostKeyFingerprint, "--var", "out=" + out}
}

// TestImportedErrorCleanupProvisionerRunsWhenAProvisionerFails imports a
// template whose provisioner fails and runs it against a real sshd: the
// error-cleanup-provisioner, imported as error_cleanup, ran on the machine
// before the build failed with the provisioner's error.
func TestImportedErrorCleanupProvisionerRunsWhenAProvisionerFails(t *testing.T) {
	srv := sshtest.Start(t)
	out := t.TempDir()
	dir := testkit.Workspace(t, map[string]string{"template.pkr.hcl": sshdTemplate("box") + `
build {
  sources = ["source.null.box"]
  provisioner "shell" {
    inline = ["echo provisioning", "exit 3"]
  }
  error-cleanup-provisioner "shell" {
    inline = ["echo cleaned up ${source.name} > ${var.out}/error-cleanup"]
  }
}
`})
	if code, stdout, stderr := imgbuild(t, dir, "import", "template.pkr.hcl", "-o", "images.star"); code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr := imgbuild(t, dir, append([]string{"run", "images.star", "--no-color"}, sshdVars(srv, out)...)...)
	if code != exitBuildFailed {
		t.Fatalf("run: exit %d, want %d (the provisioner fails)\n%s%s", code, exitBuildFailed, stdout, stderr)
	}
	got, err := os.ReadFile(filepath.Join(out, "error-cleanup"))
	if err != nil || string(got) != "cleaned up box\n" {
		t.Errorf("error-cleanup file = %q, %v; want the error_cleanup provisioner to have run", got, err)
	}
	if all := stdout + stderr; !strings.Contains(all, "a provisioner failed: running the 1 error_cleanup provisioner") ||
		!strings.Contains(all, "inline script exited with status 3") {
		t.Errorf("the run does not say the error_cleanup ran or keep the provisioner's error:\n%s", all)
	}
}

// TestImportedConfigurationToolsRunAgainstSSHD imports a template with
// Packer's ansible, ansible-local and puppet-masterless provisioners (the
// playbooks, roles, manifest, module and Hiera data of the hcl-cfgmgmt
// corpus) and runs it against a real sshd with the real ansible-playbook
// and puppet: roles_path split into a list, the extra variables,
// inventory_groups, facter, and the execute_command rewritten from Packer's
// template syntax all reach the tools. (chef-solo is not in any archive
// this machine reaches; the corpus only plans it.)
func TestImportedConfigurationToolsRunAgainstSSHD(t *testing.T) {
	testkit.RequireProgram(t, "ansible-playbook", "ansible-core")
	testkit.RequireProgram(t, "puppet", "puppet")
	testkit.RequireRoot(t) // puppet apply writes its state under /var/lib/puppet
	srv := sshtest.Start(t)
	dir := t.TempDir()
	copyDir(t, filepath.Join(repoRoot(t), "testdata", "import", "hcl-cfgmgmt"), dir)
	testkit.WriteFile(t, filepath.Join(dir, "run.pkr.hcl"), sshdTemplate("web")+`
build {
  sources = ["source.null.web"]

  provisioner "ansible" {
    playbook_file    = "./ansible/site.yml"
    host_alias       = source.name
    roles_path       = "ansible/more-roles:ansible/roles"
    ansible_env_vars = ["ANSIBLE_NOCOLOR=True"]
    extra_arguments  = ["--extra-vars", "role=${source.name} out_dir=${var.out} greeting=hello"]
    use_sftp         = true
  }

  provisioner "ansible-local" {
    playbook_files   = ["ansible/local.yml"]
    playbook_dir     = "ansible"
    inventory_groups = "web,app"
    extra_arguments  = ["--extra-vars", "out_dir=${var.out}"]
  }

  provisioner "puppet-masterless" {
    manifest_file     = "puppet/site.pp"
    module_paths      = ["puppet/modules"]
    hiera_config_path = "puppet/hiera.yaml"
    facter = {
      role    = source.name
      out_dir = var.out
    }
    prevent_sudo      = true
    execute_command   = "cd {{.WorkingDir}} && {{.FacterVars}} {{if .Sudo}}sudo -E {{end}}puppet apply --detailed-exitcodes {{.ExtraArguments}} {{.ManifestFile}}"
    ignore_exit_codes = true
  }
}
`)
	if code, stdout, stderr := imgbuild(t, dir, "import", "run.pkr.hcl", "-o", "run.star"); code != 0 || !strings.Contains(stderr, "0 TODO(import) comments") {
		t.Fatalf("import: exit %d, want 0 with no TODOs\n%s%s", code, stdout, stderr)
	}
	out := t.TempDir()
	code, stdout, stderr := imgbuild(t, dir, append([]string{"run", "run.star", "--no-color"}, sshdVars(srv, out)...)...)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, stdout, stderr)
	}
	for file, want := range map[string]string{"ansible-web": "hello from web\n", "ansible-local": "local\n", "puppet-web": "hello from puppet\n"} {
		if got, err := os.ReadFile(filepath.Join(out, file)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", file, got, err, want)
		}
	}
}

func TestImportBadInput(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{
		"bad.pkr.hcl":     "source \"null\" \"a\" {\n  ssh_host = \"x\"\n  ssh_port = \n}\n",
		"unknown.pkr.hcl": "source \"docker\" \"dev\" {\n  image = \"debian\"\n}\nbuild {\n  sources = [\"source.docker.dev\"]\n}\n",
		"bad.json":        "{\n  \"builders\": [\n    {\"type\": \"null\",}\n  ]\n}\n",
		"nobuilders.json": `{"variables": {}}`,
	})
	code, _, errOut := imgbuild(t, dir, "import", "bad.pkr.hcl")
	if want := "error: bad.pkr.hcl:3:14: Invalid expression; Expected the start of an expression, but found an invalid expression token.\n"; code != exitInvalid || errOut != want {
		t.Errorf("HCL syntax error: exit %d, stderr %q; want 2 and %q", code, errOut, want)
	}
	code, out, errOut := imgbuild(t, dir, "import", "unknown.pkr.hcl")
	if code != 0 || !strings.Contains(out, "# TODO(import): source \"docker\" \"dev\" {") ||
		!strings.Contains(errOut, `warning: unknown.pkr.hcl:1:1: the builder "docker" has no imgbuild equivalent; written as a TODO(import) comment`) ||
		!strings.Contains(errOut, "0 builds (), 1 TODO(import) comment") {
		t.Errorf("unknown builder: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = imgbuild(t, dir, "import", "bad.json")
	if want := "error: bad.json:3:22: invalid character '}' looking for beginning of object key string\n"; code != exitInvalid || errOut != want {
		t.Errorf("JSON syntax error: exit %d, stderr %q; want %q", code, errOut, want)
	}
	code, _, errOut = imgbuild(t, dir, "import", "nobuilders.json")
	if want := `a legacy template needs "builders"`; code != exitInvalid || !strings.Contains(errOut, want) {
		t.Errorf("no builders: exit %d, stderr %q", code, errOut)
	}
}

// TestImportedValidationRefusesWhatPackersRefuses gives the imported
// hcl-null corpus a value its variable's validation block refuses: the
// error is the template's error_message.
func TestImportedValidationRefusesWhatPackersRefuses(t *testing.T) {
	dir, _ := importCase(t, "hcl-null")
	args, _ := os.ReadFile(filepath.Join(dir, "args.txt"))
	code, _, errOut := imgbuild(t, dir, append([]string{"validate", "images.star", "--var", "app_version=v1.2.3"}, strings.Fields(string(args))...)...)
	if want := "The version must look like 1.2.3."; code != exitInvalid || !strings.Contains(errOut, want) || !strings.Contains(errOut, "app_version") {
		t.Errorf("validate: exit %d, stderr %q; want exit 2 and %q for app_version", code, errOut, want)
	}
}

// TestImportedFileOutsideTheWorkspaceIsAnError imports a template whose
// file() reads from outside the workspace: the import succeeds (the path is
// the template's), and validating the description refuses the read_file
// it became, naming the path and the workspace.
func TestImportedFileOutsideTheWorkspaceIsAnError(t *testing.T) {
	root := testkit.Workspace(t, map[string]string{
		"ws/imgbuild.mod": "",
		"ws/template.pkr.hcl": `
locals {
  motd = file("../motd")
}

source "null" "a" {
  ssh_host = "127.0.0.1"
}

build {
  sources = ["source.null.a"]
  provisioner "shell" {
    inline = ["echo '${local.motd}' > /etc/motd"]
  }
}
`,
		"motd": "outside\n",
	})
	dir := filepath.Join(root, "ws")
	if code, stdout, stderr := imgbuild(t, dir, "import", "template.pkr.hcl", "-o", "images.star"); code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, errOut := imgbuild(t, dir, "validate", "images.star")
	if want := `read_file: "../motd" is outside the workspace ` + dir + `; descriptions may only read files inside it`; code != exitInvalid || !strings.Contains(errOut, want) {
		t.Errorf("validate: exit %d, stderr %q; want exit 2 and %q", code, errOut, want)
	}
}

func TestDocsImportListsEveryMappedPlugin(t *testing.T) {
	code, out, _ := imgbuild(t, t.TempDir(), "docs", "import")
	plugins := [][2]string{{"amazon-ebs", "amazon_ebs()"}, {"vsphere-iso", "vsphere_iso()"}, {"vsphere-clone", "vsphere_clone()"},
		{"qemu", "qemu()"}, {"null", "null()"}, {"shell", "shell()"}, {"file", "file()"}, {"shell-local", "shell_local()"},
		{"manifest", "manifest()"}, {"checksum", "checksum()"}, {"vagrant", "vagrant_box()"},
		{"ansible", "ansible()"}, {"ansible-local", "ansible_local()"}, {"puppet-masterless", "puppet_apply()"}, {"chef-solo", "chef_solo()"}}
	for _, p := range plugins {
		if want := fmt.Sprintf("  %-17s → %s\n", p[0], p[1]); code != 0 || !strings.Contains(out, want) {
			t.Errorf("docs import lacks %q", want)
		}
	}
	// The configuration tools' conversions are documented with them.
	for _, want := range []string{"templatefile(p, vars)", "inventory_groups: a list", "{{.FacterVars}} → {facter}",
		"{{.ConfigPath}} → {config}", "ignore_exit_codes: true → valid_exit_codes = list(range(256))",
		"use_sftp: ignored (imgbuild's SSH adapter serves both SFTP and SCP)"} {
		if !strings.Contains(out, want) {
			t.Errorf("docs import lacks %q", want)
		}
	}
}

// TestDocsTemplateFileSaysItsSyntax pins down that the docs name the one
// template syntax template_file renders, the one import maps Packer's
// templatefile() to unchanged.
func TestDocsTemplateFileSaysItsSyntax(t *testing.T) {
	code, out, errOut := imgbuild(t, t.TempDir(), "docs", "template_file")
	for _, want := range []string{"template_file renders the file with HCL's template syntax, the one\n  Packer's templatefile() uses",
		"%{ if cond }...%{ else }...%{ endif }", "A file outside the workspace is an\n  error"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("docs template_file: exit %d, lacks %q:\n%s%s", code, want, out, errOut)
		}
	}
}

// TestImportLegacyConfigurationToolCommands imports a legacy JSON
// template's chef-solo, puppet-masterless and ansible-local: Packer's
// {{if .Sudo}} and {{if .Version}} idioms become {sudo} and {version}, and
// another {{if}} is a TODO with a warning.
func TestImportLegacyConfigurationToolCommands(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"t.json": `{
  "builders": [{"type": "null", "ssh_host": "127.0.0.1"}],
  "provisioners": [
    {"type": "chef-solo", "cookbook_paths": ["c"], "version": "18.2.7",
     "install_command": "curl -L https://omnitruck.chef.io/install.sh | {{if .Sudo}}sudo{{end}} bash -s --{{if .Version}} -v {{.Version}}{{end}}",
     "execute_command": "{{if .Sudo}}sudo {{end}}chef-solo --no-color -c {{.ConfigPath}} -j {{.JsonPath}}"},
    {"type": "puppet-masterless", "manifest_file": "s.pp", "prevent_sudo": true, "ignore_exit_codes": "true",
     "execute_command": "cd {{.WorkingDir}} && {{if .Sudo}}sudo -E {{end}}puppet apply {{if .Debug}}--debug {{end}}{{.ManifestFile}}"},
    {"type": "ansible-local", "playbook_file": "p.yml", "inventory_groups": "a,b"}
  ]
}
`})
	code, out, errOut := imgbuild(t, dir, "import", "t.json")
	if code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		`execute_command = "{sudo}chef-solo --no-color -c {config} -j {json}"`,
		`install_command = "curl -L https://omnitruck.chef.io/install.sh | {sudo}bash -s --{version}"`,
		`puppet_apply(valid_exit_codes = list(range(256)), manifest_file = "s.pp")`,
		`# TODO(import): execute_command = "cd {{ .WorkingDir }} && {{if .Sudo}}sudo -E {{end}}puppet apply`,
		`ansible_local(inventory_groups = ["a", "b"], playbook_file = "p.yml")`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the import lacks %s:\n%s", want, out)
		}
	}
	if want := "warning: t.json: the legacy template action {{if .Debug}}--debug {{end}} is not mapped; written as a TODO(import) comment\n"; !strings.Contains(errOut, want) ||
		!strings.Contains(errOut, "1 build (null), 1 TODO(import) comment") {
		t.Errorf("stderr %q; want %q and the count", errOut, want)
	}
}
