package puppet_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/cfgtool/cfgtest"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// workspace copies testdata/ into a fresh workspace with images.star.
func workspace(t *testing.T, star string) string {
	t.Helper()
	return cfgtest.Workspace(t, "testdata", star)
}

// run evaluates and runs images.star in dir.
func run(t *testing.T, dir string) (*engine.Summary, *testkit.Recorder) {
	t.Helper()
	r := cfgtest.Run(t, dir, "images.star", nil)
	return r.Sum, r.Rec
}

var (
	nullHost = cfgtest.NullHost
	wantIn   = cfgtest.WantIn
)

func requirePuppet(t *testing.T) {
	t.Helper()
	testkit.RequireProgram(t, "puppet", "puppet")
	testkit.RequireRoot(t) // puppet apply writes its state under /var/lib/puppet
}

// TestAManifestWithModulesHieraAndFactsIsApplied: through null() on the
// private sshd, the manifest, a module path and a Hiera configuration
// with its data directory are uploaded, and puppet apply uses them all.
func TestAManifestWithModulesHieraAndFactsIsApplied(t *testing.T) {
	requirePuppet(t)
	srv := sshtest.Start(t)
	dest := filepath.Join(t.TempDir(), "out")
	staging := filepath.Join(t.TempDir(), "staging")
	dir := workspace(t, fmt.Sprintf(`
null(name = "web", %s, provisioners = [puppet_apply(
    manifest_file = "site.pp",
    module_paths = ["modules"],
    hiera_config_path = "hiera/hiera.yaml",
    facter = {"dest": %q, "role": "web server"},
    staging_directory = %q,
)])
`, nullHost(srv), dest, staging))
	sum, rec := run(t, dir)
	if err := sum.Result("web").Err; err != nil {
		t.Fatalf("build failed: %v\n%s", err, rec.Log())
	}
	motd, _ := os.ReadFile(filepath.Join(dest, "motd"))
	if string(motd) != "role web server, greeting from hiera\n" {
		t.Errorf("motd = %q", motd)
	}
	mod, _ := os.ReadFile(filepath.Join(dest, "from-module"))
	if string(mod) != "hello from a module in "+dest+"\n" {
		t.Errorf("from-module = %q", mod)
	}
	wantIn(t, "the log", rec.Log(), "puppet apply --detailed-exitcodes --modulepath="+staging+"/modules/0 --hiera_config="+staging+"/hiera/hiera.yaml --color=false "+staging+"/manifests/site.pp",
		"env FACTER_dest="+dest+" FACTER_role='web server' puppet apply")
	if _, err := os.Stat(staging); !os.IsNotExist(err) {
		t.Errorf("the staging directory is left: %v", err)
	}
}

// TestAFailedResourceFailsTheBuildWithPuppetsMessage: Puppet's Error:
// lines are the build's error; a manifest that does not compile too.
func TestAFailedResourceFailsTheBuildWithPuppetsMessage(t *testing.T) {
	requirePuppet(t)
	srv := sshtest.Start(t)
	dir := workspace(t, fmt.Sprintf(`
null(name = "fails", %s, provisioners = [puppet_apply(manifest_file = "failing.pp")])
null(name = "broken", %s, provisioners = [puppet_apply(manifest_file = "broken.pp", max_retries = 2)])
`, nullHost(srv), nullHost(srv)))
	sum, rec := run(t, dir)
	err := sum.Result("fails").Err
	if err == nil {
		t.Fatalf("the failing manifest succeeded\n%s", rec.Log())
	}
	wantIn(t, "the error", err.Error(), "puppet apply failed (exit status ",
		"Error: '/bin/false' returned 1 instead of one of [0]",
		"Error: /Stage[main]/Main/Exec[imgbuild-fails]/returns: change from 'notrun' to ['0'] failed: '/bin/false' returned 1 instead of one of [0]")
	err = sum.Result("broken").Err
	if err == nil {
		t.Fatalf("the broken manifest succeeded\n%s", rec.Log())
	}
	wantIn(t, "the error", err.Error(), "puppet apply failed (exit status 1):", "Error: Could not parse for environment production: Syntax error at 'content'", "broken.pp", "(after 3 attempts; max_retries = 2)")
}

// TestBadInputIsAnErrorAtTheKeyword: mistakes found when the description
// is evaluated.
func TestBadInputIsAnErrorAtTheKeyword(t *testing.T) {
	for _, c := range []struct{ call, want string }{
		{`puppet_apply(manifest_file = "missing.pp")`, `puppet_apply: for parameter manifest_file: "missing.pp" does not exist (looked for `},
		{`puppet_apply(manifest_file = "site.pp", module_paths = ["nope"])`, `puppet_apply: for parameter module_paths: "nope" does not exist`},
		{`puppet_apply(manifest_file = "site.pp", hiera_config_path = "hiera")`, `puppet_apply: for parameter hiera_config_path: "hiera" is a directory, want a file`},
		{`puppet_apply(manifest_file = "site.pp", facter = {"a-b": "x"})`, `puppet_apply: for parameter facter: "a-b" is not a fact name Puppet can be given`},
		{`puppet_apply(manifest_file = "site.pp", execute_command = "puppet apply")`, `puppet_apply: for parameter execute_command: "puppet apply" never names the manifest: it must contain {manifest}`},
		{`puppet_apply(manifest_file = "site.pp", execute_command = "puppet apply {{.ManifestFile}}")`, `puppet_apply: for parameter execute_command: "puppet apply {{.ManifestFile}}" uses Go template syntax`},
		{`puppet_apply(manifest_file = "site.pp", staging_directory = "tmp/x")`, `puppet_apply: for parameter staging_directory: "tmp/x" is not an absolute path on the machine`},
	} {
		dir := workspace(t, "local(name = \"site\", provisioners = ["+c.call+"])\n")
		_, err := cfgtest.Load(dir, "images.star")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %s", c.call, err, c.want)
		}
	}
}
