package chef_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/cfgtool/cfgtest"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
)

// TestEverythingUpToTheChefSoloInvocation: against the private sshd,
// chef_solo() uploads the cookbooks, roles, data bags, environments and
// the secret, writes solo.rb and the node's JSON, and runs chef-solo with
// them. Chef is not installed here (it is in no archive this machine
// reaches), so the run ends at the invocation, with the error that says
// so; the staging directory is kept to read what was written.
func TestEverythingUpToTheChefSoloInvocation(t *testing.T) {
	srv := sshtest.Start(t)
	staging := filepath.Join(t.TempDir(), "chef")
	dir := cfgtest.Workspace(t, "testdata", fmt.Sprintf(`
token = var("token", default = "chef-token-0815", sensitive = True)
null(name = "web", %s, provisioners = [chef_solo(
    cookbook_paths = ["cookbooks"],
    remote_cookbook_paths = ["/srv/site-cookbooks"],
    roles_path = "roles",
    data_bags_path = "data_bags",
    environments_path = "environments",
    encrypted_data_bag_secret_path = "secret",
    chef_environment = "production",
    run_list = ["role[web]", "recipe[web::default]"],
    json = {"app": {"port": 8080, "debug": False}, "token": token},
    chef_license = "accept",
    skip_install = True,
    staging_directory = %q,
    clean_staging_directory = False,
)])
`, cfgtest.NullHost(srv), staging))
	r := cfgtest.Run(t, dir, "images.star", nil)
	err := r.Err(t, "web")
	cfgtest.WantIn(t, "the error", err, "chef-solo is not installed on the machine (exit status 127): leave skip_install off so that install_command installs it, or install Chef Infra Client in an earlier provisioner",
		"chef-solo: command not found")
	cfgtest.WantIn(t, "the log", r.Rec.Log(), "chef_solo: running chef-solo --no-color -c "+staging+"/solo.rb -j "+staging+"/node.json\n")

	solo := cfgtest.ReadFile(t, filepath.Join(staging, "solo.rb"))
	want := "# Written by imgbuild's chef_solo().\n" +
		"cookbook_path ['" + staging + "/cookbooks/0', '/srv/site-cookbooks']\n" +
		"role_path '" + staging + "/roles'\n" +
		"data_bag_path '" + staging + "/data_bags'\n" +
		"environment_path '" + staging + "/environments'\n" +
		"environment 'production'\n" +
		"encrypted_data_bag_secret '" + staging + "/encrypted_data_bag_secret'\n" +
		"chef_license 'accept'\n"
	if solo != want {
		t.Errorf("solo.rb:\n%s\nwant:\n%s", solo, want)
	}
	node := cfgtest.ReadFile(t, filepath.Join(staging, "node.json"))
	wantNode := `{
  "app": {
    "debug": false,
    "port": 8080
  },
  "run_list": [
    "role[web]",
    "recipe[web::default]"
  ],
  "token": "chef-token-0815"
}
`
	if node != wantNode {
		t.Errorf("node.json:\n%s\nwant:\n%s", node, wantNode)
	}
	for name, want := range map[string]string{
		"cookbooks/0/web/recipes/default.rb": "package 'nginx'",
		"cookbooks/0/web/templates/site.erb": "listen <%= @port %>",
		"roles/web.json":                     `"run_list": ["recipe[web]"]`,
		"data_bags/users/alice.json":         `"id": "alice"`,
		"environments/production.json":       `"name": "production"`,
		"encrypted_data_bag_secret":          "not-a-real-secret",
	} {
		cfgtest.WantIn(t, name, cfgtest.ReadFile(t, filepath.Join(staging, name)), want)
	}
	for _, name := range []string{"node.json", "encrypted_data_bag_secret"} {
		if fi, err := os.Stat(filepath.Join(staging, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", name, fi.Mode(), err)
		}
	}
	if fi, _ := os.Stat(staging); fi.Mode().Perm() != 0o700 {
		t.Errorf("the staging directory's mode is %v, want 0700", fi.Mode())
	}
	if strings.Contains(r.Rec.JSON(), "chef-token-0815") {
		t.Errorf("an event shows the secret")
	}
}

// TestInstallCommandRunsWhenChefSoloIsMissing: install_command, with
// {version} filled in, runs first; its failure is the build's.
func TestInstallCommandRunsWhenChefSoloIsMissing(t *testing.T) {
	srv := sshtest.Start(t)
	dir := cfgtest.Workspace(t, "testdata", fmt.Sprintf(`
null(name = "web", %s, provisioners = [chef_solo(
    cookbook_paths = ["cookbooks"],
    version = "18.2.7",
    install_command = "echo installing chef{version} >&2; exit 7",
)])
`, cfgtest.NullHost(srv)))
	r := cfgtest.Run(t, dir, "images.star", nil)
	cfgtest.WantIn(t, "the error", r.Err(t, "web"),
		`chef_solo: install_command "echo installing chef -v 18.2.7 >&2; exit 7" failed (exit status 7); last lines of stderr:`+"\n    installing chef -v 18.2.7")
}

// TestBadInputIsAnErrorAtTheKeyword: mistakes found when the description
// is evaluated.
func TestBadInputIsAnErrorAtTheKeyword(t *testing.T) {
	for _, c := range []struct{ call, want string }{
		{`chef_solo(cookbook_paths = ["nope"])`, `chef_solo: for parameter cookbook_paths: "nope" does not exist (looked for `},
		{`chef_solo()`, `chef_solo: for parameter cookbook_paths: is empty: name the directories of cookbooks to upload`},
		{`chef_solo(cookbook_paths = ["cookbooks"], chef_environment = "production")`, `chef_solo: for parameter chef_environment: is set but environments_path is not`},
		{`chef_solo(cookbook_paths = ["cookbooks"], run_list = ["web; rm -rf /"])`, `chef_solo: for parameter run_list: "web; rm -rf /" is not a run list item`},
		{`chef_solo(cookbook_paths = ["cookbooks"], run_list = ["recipe[web]"], json = {"run_list": []})`, `chef_solo: for parameter json: sets run_list, and so does run_list: say it in one place`},
		{`chef_solo(cookbook_paths = ["cookbooks"], chef_license = "yes")`, `chef_solo: for parameter chef_license: "yes" is not one of "accept", "accept-silent", "accept-no-persist"`},
		{`chef_solo(cookbook_paths = ["cookbooks"], execute_command = "chef-solo -c {config}")`, `chef_solo: for parameter execute_command: "chef-solo -c {config}" never names json: it must contain {json}`},
		{`chef_solo(cookbook_paths = ["cookbooks"], json = ["a"])`, `chef_solo: for parameter json: got list, want dict of any`},
	} {
		dir := cfgtest.Workspace(t, "testdata", "local(name = \"site\", provisioners = ["+c.call+"])\n")
		_, err := cfgtest.Load(dir, "images.star")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %s", c.call, err, c.want)
		}
	}
}
