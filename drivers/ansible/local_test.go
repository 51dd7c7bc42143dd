package ansible_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/ansible"
	"github.com/imgbuild/imgbuild/drivers/chroot"
	"github.com/imgbuild/imgbuild/drivers/chroot/chroottest"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
)

// TestAnsibleLocalRunsThePlaybookOnTheMachine: over SSH, the playbook
// directory is uploaded to a staging directory and ansible-playbook runs
// there with -c local; the staging directory goes afterwards.
func TestAnsibleLocalRunsThePlaybookOnTheMachine(t *testing.T) {
	requireAnsible(t)
	srv := sshtest.Start(t)
	dest := t.TempDir()
	staging := filepath.Join(t.TempDir(), "staging")
	dir := workspace(t, fmt.Sprintf(`
null(name = "web", %s, provisioners = [ansible_local(
    playbook_dir = "site", playbook_file = "site/site.yml", inventory_groups = ["web"],
    staging_directory = %q,
    extra_vars = {"dest_dir": %q, "greeting": "from the machine", "port": 41, "install_package": False},
)])
`, nullHost(srv), staging, dest))
	r := run(t, dir, "images.star", nil)
	r.OK(t)
	if got := readFile(t, filepath.Join(dest, "written")); got != "written by ansible for web\n" {
		t.Errorf("written = %q", got)
	}
	wantIn(t, "app.conf", readFile(t, filepath.Join(dest, "app.conf")), "greeting = from the machine\n", "port = 42\n", "build = web on null\n")
	wantIn(t, "the log", r.Rec.Log(), "TASK [Template a config]", "ansible_local: uploading the playbook to "+staging)
	if _, err := os.Stat(staging); !os.IsNotExist(err) {
		t.Errorf("the staging directory is left: %v", err)
	}
}

// TestAnsibleLocalFailedTaskAndMissingAnsible: a failed task's name and
// message, and a machine without ansible-playbook.
func TestAnsibleLocalFailedTaskAndMissingAnsible(t *testing.T) {
	requireAnsible(t)
	srv := sshtest.Start(t)
	dir := workspace(t, fmt.Sprintf(`
null(name = "fails", %s, provisioners = [ansible_local(playbook_file = "failing.yml")])
null(name = "missing", %s, provisioners = [ansible_local(playbook_file = "failing.yml", command = "imgbuild-no-such-ansible-playbook")])
`, nullHost(srv), nullHost(srv)))
	r := run(t, dir, "images.star", nil)
	wantIn(t, "the error", r.Err(t, "fails"), `task "Read the missing file" (`, `failing.yml:10) failed on default: non-zero return code`, "No such file or directory")
	wantIn(t, "the error", r.Err(t, "missing"), "ansible_local: imgbuild-no-such-ansible-playbook is not installed on the machine: set install = True to install it through the machine's package manager, or install it in an earlier provisioner")
}

// provisioner decodes settings with def's schema and makes the
// provisioner.
func provisioner(t *testing.T, def *engine.ProvisionerDef, settings map[string]any) engine.Provisioner {
	t.Helper()
	return testkit.New(t, def.Schema, def.New, value.FromGo(settings).(*value.Map))
}

// TestInstallNeedsAptOrDnf: install = True on a machine with neither
// (a busybox tree) says so.
func TestInstallNeedsAptOrDnf(t *testing.T) {
	testkit.RequireRoot(t)
	root := chroottest.BusyboxTree(t)
	comm, err := chroot.New(root, chroot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer comm.Close()
	book := filepath.Join(t.TempDir(), "site.yml")
	testkit.WriteFile(t, book, "- hosts: all\n  tasks: []\n")
	ui, rec := testkit.NewUI("tiny", "rootfs")
	p := provisioner(t, ansible.LocalDef(), map[string]any{"playbook_file": book, "install": true})
	err = p.Provision(context.Background(), &engine.ProvisionEnv{UI: ui, Comm: comm, Build: "tiny", Driver: "rootfs", WorkDir: t.TempDir()})
	want := "ansible_local: install = True needs apt-get or dnf on the machine to install ansible-playbook, and it has neither: install ansible-playbook in an earlier provisioner, or use an image that has it, and leave install out"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v\nwant %s\n%s", err, want, rec.Log())
	}
}
