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
	p := filepath.Join(repoRoot(t), "testdata", "import", name, file)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n%s", file, p, got)
	}
}

// TestImportCorpus imports every template of testdata/import, compares
// the description, the warnings and the plan with the golden files, and
// checks that the plan has one build per source the build blocks name.
func TestImportCorpus(t *testing.T) {
	cases := map[string]int{"hcl-null": 2, "hcl-aws": 2, "hcl-dir": 2, "json-legacy": 2, "hcl-cfgmgmt": 2}
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
			code, out, errOut := imgbuild(t, dir, append([]string{"plan", "images.star"}, strings.Fields(string(args))...)...)
			if code != 0 {
				t.Fatalf("plan: exit %d\n%s%s", code, out, errOut)
			}
			golden(t, name, "want.plan", out)
			if want := fmt.Sprintf("Plan: %d builds", builds); !strings.HasPrefix(out, want) {
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

// TestImportedErrorCleanupProvisionerRunsWhenAProvisionerFails imports a
// template whose provisioner fails and runs it against a real sshd: the
// error-cleanup-provisioner, imported as error_cleanup, ran on the machine
// before the build failed with the provisioner's error.
func TestImportedErrorCleanupProvisionerRunsWhenAProvisionerFails(t *testing.T) {
	srv := sshtest.Start(t)
	out := t.TempDir()
	dir := testkit.Workspace(t, map[string]string{"template.pkr.hcl": `
variable "port" { type = number }
variable "user" { type = string }
variable "key" { type = string }
variable "host_key" { type = string }
variable "out" { type = string }

source "null" "box" {
  ssh_host             = "127.0.0.1"
  ssh_port             = var.port
  ssh_username         = var.user
  ssh_private_key_file = var.key
  ssh_host_key         = var.host_key
}

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
	code, stdout, stderr := imgbuild(t, dir, "run", "images.star", "--no-color",
		"--var", fmt.Sprintf("port=%d", srv.Port), "--var", "user="+srv.User, "--var", "key="+srv.ClientKeyFile,
		"--var", "host_key="+srv.HostKeyFingerprint, "--var", "out="+out)
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
