package ansible_test

import (
	"fmt"
	"github.com/imgbuild/imgbuild/drivers/cfgtool/cfgtest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// processesMentioning lists the processes whose command line contains
// any of words, as "pid: command line".
func processesMentioning(words ...string) (lines []string, cmdlines []string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(data) == 0 {
			continue
		}
		line := strings.ReplaceAll(strings.TrimRight(string(data), "\x00"), "\x00", " ")
		cmdlines = append(cmdlines, line)
		for _, w := range words {
			if strings.Contains(line, w) {
				lines = append(lines, e.Name()+": "+line)
				break
			}
		}
	}
	return lines, cmdlines
}

// TestAPlaybookProvisionsAnSSHMachine runs a playbook through null()
// against the private sshd: through the adapter, it writes a file,
// installs a package and templates a config with extra_vars of several
// types. While it runs, the test reads every process's command line: the
// sensitive variable is on none of them, nor in any event.
func TestAPlaybookProvisionsAnSSHMachine(t *testing.T) {
	requireAnsible(t)
	testkit.RequireRoot(t) // the playbook installs a package on this machine
	srv := sshtest.Start(t)
	dest := t.TempDir()
	gate := filepath.Join(t.TempDir(), "go")
	const secret = "s3cr3t-token-4711-imgbuild"
	dir := workspace(t, fmt.Sprintf(`
token = var("token", default = %q, sensitive = True)
null(
    name = "web",
    %s,
    provisioners = [ansible(
        playbook_file = "site/site.yml",
        groups = ["web"],
        extra_vars = {"dest_dir": %q, "greeting": "hello", "port": 8079, "api_token": token, "gate": %q},
    )],
)
`, secret, nullHost(srv), dest, gate))
	rec := &testkit.Recorder{}
	var mu sync.Mutex
	var seen, leaked []string
	var once sync.Once
	rec.OnEvent(func(e event.Event) {
		if e.Type != event.Output || !strings.Contains(e.Message, "TASK [Wait for the test]") {
			return
		}
		once.Do(func() {
			go func() {
				lines, all := processesMentioning("ansible")
				mu.Lock()
				seen = lines
				for _, l := range all {
					if strings.Contains(l, secret) {
						leaked = append(leaked, l)
					}
				}
				mu.Unlock()
				os.WriteFile(gate, nil, 0o644)
			}()
		})
	})
	r := run(t, dir, "images.star", rec)
	r.OK(t)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatalf("no ansible process was running while the playbook waited")
	}
	t.Logf("ansible processes while the playbook ran:\n%s", strings.Join(seen, "\n"))
	if len(leaked) > 0 {
		t.Errorf("the secret is on a command line:\n%s", strings.Join(leaked, "\n"))
	}
	if got := readFile(t, filepath.Join(dest, "written")); got != "written by ansible for web\n" {
		t.Errorf("written = %q", got)
	}
	conf := readFile(t, filepath.Join(dest, "app.conf"))
	wantIn(t, "app.conf", conf, "greeting = hello\n", "port = 8080\n", "token = "+secret+"\n", "build = web on null\n")
	if fi, _ := os.Stat(filepath.Join(dest, "app.conf")); fi.Mode().Perm() != 0o600 {
		t.Errorf("app.conf mode %v", fi.Mode())
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Status}", "hello").CombinedOutput(); err != nil || !strings.Contains(string(out), "install ok installed") {
		t.Errorf("the package is not installed: %v %s", err, out)
	}
	log := r.Rec.Log()
	wantIn(t, "the log", log, "TASK [Write a file]", "TASK [Install a package]", "TASK [Template a config]", "ansible-core 2.", "through imgbuild's SSH adapter")
	if strings.Contains(r.Rec.JSON(), secret) {
		t.Errorf("an event shows the secret")
	}
}

// TestAPlaybookProvisionsALocalBuildsDirectory: on local(), commands run on
// this machine in the build's directory, which the playbook reaches as
// imgbuild_root; what it writes ends up in the output directory.
func TestAPlaybookProvisionsALocalBuildsDirectory(t *testing.T) {
	requireAnsible(t)
	dir := workspace(t, `
local(
    name = "site",
    files = {"srv/.keep": ""},
    provisioners = [ansible(
        playbook_file = "site/site.yml",
        groups = ["web"],
        extra_vars = {"dest_dir": "/srv", "greeting": "hi", "port": 1, "install_package": False},
    )],
)
`)
	r := run(t, dir, "images.star", nil)
	r.OK(t)
	out := filepath.Join(dir, "output/site")
	if got := readFile(t, filepath.Join(out, "srv/written")); got != "written by ansible for site\n" {
		t.Errorf("written = %q", got)
	}
	wantIn(t, "app.conf", readFile(t, filepath.Join(out, "srv/app.conf")), "greeting = hi\n", "port = 2\n", "token = none\n", "build = site on local\n")
	if _, err := os.Stat(filepath.Join(out, ".imgbuild-ansible-tmp")); !os.IsNotExist(err) {
		t.Errorf("Ansible's temporary directory is left in the output: %v", err)
	}
}

// TestAFailedTaskFailsTheBuildWithItsNameAndMessage: the error names the
// task that failed, where it is written and Ansible's message; an ignored
// failure is not in it; max_retries runs the playbook again.
func TestAFailedTaskFailsTheBuildWithItsNameAndMessage(t *testing.T) {
	requireAnsible(t)
	dir := workspace(t, `
local(name = "site", provisioners = [ansible(playbook_file = "failing.yml", max_retries = 1)])
`)
	r := run(t, dir, "images.star", nil)
	err := r.Err(t, "site")
	wantIn(t, "the error", err,
		`ansible-playbook failing.yml failed (exit status 2): task "Read the missing file" (`+filepath.Join(dir, "failing.yml")+`:10) failed on default: non-zero return code`,
		"cat: /nonexistent/imgbuild-missing-file: No such file or directory",
		"(after 2 attempts; max_retries = 1)")
	if strings.Contains(err, "Ignore this one") || strings.Contains(err, "Never reached") {
		t.Errorf("the error names a task that did not fail the build: %s", err)
	}
	wantIn(t, "the log", r.Rec.Log(), "ansible-playbook failing.yml failed (attempt 1 of 2); trying again")
}

// TestAPlaybookThatDoesNotParseShowsAnsiblesError: Ansible's own ERROR!
// text, with the line and column, and no second attempt.
func TestAPlaybookThatDoesNotParseShowsAnsiblesError(t *testing.T) {
	requireAnsible(t)
	dir := workspace(t, `
local(name = "site", provisioners = [ansible(playbook_file = "broken.yml", max_retries = 3)])
`)
	r := run(t, dir, "images.star", nil)
	err := r.Err(t, "site")
	wantIn(t, "the error", err,
		"ansible-playbook broken.yml failed (exit status 4), as Ansible reports it:\nERROR! We were unable to read either as JSON nor YAML",
		"Syntax Error while loading YAML.",
		"The error appears to be in '"+filepath.Join(dir, "broken.yml")+"': line 7, column 8",
		"       bad: indentation\n       ^ here")
	if strings.Contains(err, "attempts") || strings.Contains(r.Rec.Log(), "trying again") {
		t.Errorf("a playbook that does not parse was run again: %s", err)
	}
}

// TestWithoutAnsiblePlaybookTheErrorNamesTheDebianPackage: PATH without
// ansible-playbook.
func TestWithoutAnsiblePlaybookTheErrorNamesTheDebianPackage(t *testing.T) {
	dir := workspace(t, `
local(name = "site", provisioners = [ansible(playbook_file = "site/site.yml")])
`)
	t.Setenv("PATH", t.TempDir())
	r := run(t, dir, "images.star", nil)
	wantIn(t, "the error", r.Err(t, "site"),
		"ansible-playbook is not installed on this machine (it is not on PATH): install Debian's ansible-core package (apt-get install ansible-core), or name the program with command")
}

// TestBadInputIsAnErrorAtTheKeyword: mistakes found when the description
// is evaluated.
func TestBadInputIsAnErrorAtTheKeyword(t *testing.T) {
	for _, c := range []struct{ call, want string }{
		{`ansible(playbook_file = "missing.yml")`, `ansible: for parameter playbook_file: "missing.yml" does not exist (looked for `},
		{`ansible(playbook_file = "site/site.yml", extra_vars = ["a=b"])`, `ansible: for parameter extra_vars: got list, want dict of any`},
		{`ansible(playbook_file = "site/site.yml", extra_vars = "a=b")`, `ansible: for parameter extra_vars: got string, want dict of any`},
		{`ansible(playbook_file = "site/site.yml", extra_vars = {"ansible_port": 22})`, `ansible: for parameter extra_vars: sets ansible_port, which imgbuild sets itself to reach the machine`},
		{`ansible(playbook_file = "site/site.yml", extra_vars = {"2x": 1})`, `ansible: for parameter extra_vars: "2x" is not a valid Ansible variable name`},
		{`ansible(playbook_file = "site/site.yml", ansible_env_vars = {"ANSIBLE_HOST_KEY_CHECKING": "False"})`, `ansible: for parameter ansible_env_vars: turns host key checking off (ANSIBLE_HOST_KEY_CHECKING=False)`},
		{`ansible(playbook_file = "site/site.yml", groups = ["web-servers"])`, `ansible: for parameter groups: "web-servers" is not a valid Ansible group name`},
		{`ansible(playbook_file = "site/site.yml", groups = ["all"])`, `ansible: for parameter groups: "all" is a group every host is in already: leave it out`},
		{`ansible_local(playbook_file = "site/site.yml", inventory_groups = ["web-servers"])`, `ansible_local: for parameter inventory_groups: "web-servers" is not a valid Ansible group name`},
		{`ansible_local(playbook_file = "site/site.yml", inventory_groups = ["ungrouped"])`, `ansible_local: for parameter inventory_groups: "ungrouped" is a group every host is in already: leave it out`},
		{`ansible(playbook_file = "site/site.yml", become_user = "app")`, `ansible: for parameter become_user: is set but become is not`},
		{`ansible(playbook_file = "site/site.yml", galaxy_file = "nope.yml")`, `ansible: for parameter galaxy_file: "nope.yml" does not exist`},
		{`ansible(playbook_file = "site/site.yml", roles_path = "site/site.yml")`, `ansible: for parameter roles_path: "site/site.yml" is a file, want a directory`},
		{`ansible(playbook_file = "site/site.yml", max_retries = -1)`, `ansible: for parameter max_retries: -1 is negative`},
	} {
		dir := workspace(t, "local(name = \"site\", provisioners = ["+c.call+"])\n")
		_, err := cfgtest.Load(dir, "images.star")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %s", c.call, err, c.want)
		}
	}
}

// TestUseProxyFalseConnectsStraightToTheMachine: ansible-playbook logs in
// to the sshd itself, with the keys imgbuild logged in with (lent through
// an agent) and the host key imgbuild verified.
func TestUseProxyFalseConnectsStraightToTheMachine(t *testing.T) {
	requireAnsible(t)
	srv := sshtest.Start(t)
	dest := t.TempDir()
	dir := workspace(t, fmt.Sprintf(`
null(name = "web", %s, provisioners = [ansible(
    playbook_file = "site/site.yml", use_proxy = False, groups = ["web"],
    extra_vars = {"dest_dir": %q, "greeting": "direct", "port": 1, "install_package": False},
)])
`, nullHost(srv), dest))
	r := run(t, dir, "images.star", nil)
	r.OK(t)
	wantIn(t, "app.conf", readFile(t, filepath.Join(dest, "app.conf")), "greeting = direct\n")
	wantIn(t, "the log", r.Rec.Log(), "straight to "+srv.User+"@"+srv.Addr()+" (use_proxy = False)")
	if !strings.Contains(srv.Log(), "Accepted publickey") {
		t.Errorf("sshd did not log Ansible in with a key:\n%s", srv.Log())
	}
}

// TestUseProxyFalseNeedsAnSSHMachine: a chroot or directory has no SSH
// server to connect to.
func TestUseProxyFalseNeedsAnSSHMachine(t *testing.T) {
	requireAnsible(t)
	dir := workspace(t, `
local(name = "site", provisioners = [ansible(playbook_file = "site/site.yml", use_proxy = False)])
`)
	r := run(t, dir, "images.star", nil)
	wantIn(t, "the error", r.Err(t, "site"), "use_proxy = False connects ansible-playbook straight to the machine's SSH server, but the local builder does not reach its machine over SSH: leave use_proxy at True")
}

// TestEveryKeywordReachesAnsible: galaxy_file (a role and a collection
// from local tarballs, offline), roles_path, ansible_cfg, host_alias,
// groups, inventory_extra, extra_arguments and become, each seen from
// inside the playbook.
func TestEveryKeywordReachesAnsible(t *testing.T) {
	requireAnsible(t)
	dir := workspace(t, `
local(name = "site", files = {"out/.keep": ""}, provisioners = [ansible(
    playbook_file = "keywords/play.yml",
    host_alias = "webhost",
    groups = ["web", "frontend"],
    inventory_extra = {"custom_host_var": "from inventory_extra"},
    ansible_cfg = "keywords/ansible.cfg",
    galaxy_file = "keywords/requirements.yml",
    galaxy_offline = True,
    roles_path = ["keywords/roles"],
    extra_arguments = ["--tags", "selected", "--become-method=su"],
    become = True,
    ansible_env_vars = {"ANSIBLE_DISPLAY_SKIPPED_HOSTS": "False"},
)])
`)
	kw := filepath.Join(dir, "keywords")
	if out, err := exec.Command("tar", "czf", filepath.Join(kw, "greeter.tar.gz"), "-C", filepath.Join(kw, "src"), "greeter").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	build := exec.Command("ansible-galaxy", "collection", "build", "--output-path", kw, filepath.Join(kw, "src/collection"))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("ansible-galaxy collection build: %v\n%s", err, out)
	}
	r := run(t, dir, "images.star", nil)
	r.OK(t)
	out := filepath.Join(dir, "output/site/out")
	wantIn(t, "given", readFile(t, filepath.Join(out, "given")),
		"inventory_hostname=webhost\n", "groups=frontend,web\n", "custom=from inventory_extra\n", "timeout=17\n", "who=root\n")
	for name, want := range map[string]string{"greeter": "from galaxy_file\n", "localrole": "from roles_path\n", "collection": "from a collection\n"} {
		if got := readFile(t, filepath.Join(out, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "skipped")); !os.IsNotExist(err) {
		t.Errorf("--tags did not leave the other task out: %v", err)
	}
	wantIn(t, "the log", r.Rec.Log(), "installing galaxy_file's roles", "installing galaxy_file's collections", "--offline", "--become --tags selected --become-method=su")
}

// TestTimeoutStopsAPlaybookThatTakesTooLong: the error says which timeout.
func TestTimeoutStopsAPlaybookThatTakesTooLong(t *testing.T) {
	requireAnsible(t)
	dir := workspace(t, `
local(name = "site", provisioners = [ansible(playbook_file = "slow.yml", timeout = "5s")])
`)
	testkit.WriteFile(t, filepath.Join(dir, "slow.yml"), "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.command: sleep 600\n")
	start := time.Now()
	r := run(t, dir, "images.star", nil)
	wantIn(t, "the error", r.Err(t, "site"), `ansible slow.yml timed out after 5s (timeout = "5s"): make it faster or raise timeout`)
	if d := time.Since(start); d > 90*time.Second {
		t.Errorf("stopping took %s", d)
	}
	if p, _ := processesMentioning("sleep 600"); len(p) > 0 {
		t.Errorf("left running: %v", p)
	}
}
