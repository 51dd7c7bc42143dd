package ansible_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/cfgtool/cfgtest"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
)

// The benchmarks time one playbook (testdata/bench.yml, ten tasks) against
// the private sshd three ways, side by side in one run:
//
//	go test ./drivers/ansible -run '^$' -bench Playbook -benchtime 5x
//
// through ansible() and its adapter (use_proxy = True), through ansible()
// straight to sshd (use_proxy = False), and ansible-playbook run by hand
// with an inventory, which is what the adapter's cost is measured against.
// IMGBUILD_BENCH_PIPELINING=True runs all three with Ansible's pipelining.

// pipelining is ANSIBLE_PIPELINING for the benchmarks.
func pipelining() string {
	if v := os.Getenv("IMGBUILD_BENCH_PIPELINING"); v != "" {
		return v
	}
	return "False"
}

func benchNull(b *testing.B, srv *sshtest.Server, useProxy bool) {
	requireAnsible(b)
	dir := workspace(b, fmt.Sprintf(`
null(name = "bench", %s, provisioners = [ansible(playbook_file = "bench.yml", use_proxy = %s, extra_vars = {"dest": %q},
    ansible_env_vars = {"ANSIBLE_PIPELINING": %q})])
`, cfgtest.NullHost(srv), map[bool]string{true: "True", false: "False"}[useProxy], b.TempDir(), pipelining()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cfgtest.Run(b, dir, "images.star", nil).OK(b)
	}
}

func BenchmarkPlaybookThroughTheAdapter(b *testing.B) {
	benchNull(b, sshtest.Start(b), true)
}

func BenchmarkPlaybookStraightOverSSH(b *testing.B) {
	benchNull(b, sshtest.Start(b), false)
}

func BenchmarkPlaybookByHandOverSSH(b *testing.B) {
	requireAnsible(b)
	srv := sshtest.Start(b)
	dir := b.TempDir()
	inv := filepath.Join(dir, "inventory")
	line := fmt.Sprintf("default ansible_host=%s ansible_port=%d ansible_user=%s ansible_ssh_private_key_file=%s ansible_ssh_common_args='-o UserKnownHostsFile=%s'\n",
		srv.Host, srv.Port, srv.User, srv.ClientKeyFile, srv.KnownHostsFile)
	if err := os.WriteFile(inv, []byte(line), 0o600); err != nil {
		b.Fatal(err)
	}
	cp, err := os.MkdirTemp("", "bench-cp-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(cp)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command("ansible-playbook", "-i", inv, "-e", "dest="+dir, "testdata/bench.yml")
		cmd.Env = append(os.Environ(), "ANSIBLE_PIPELINING="+pipelining(), "ANSIBLE_SSH_CONTROL_PATH_DIR="+cp, "ANSIBLE_PYTHON_INTERPRETER=auto_silent", "ANSIBLE_SSH_ARGS=-o ControlMaster=auto -o ControlPersist=60s", "BENCH_RUN="+strconv.Itoa(i))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("ansible-playbook: %v\n%s", err, out)
		}
	}
	b.StopTimer()
	entries, _ := os.ReadDir(cp)
	for _, e := range entries {
		exec.Command("ssh", "-o", "ControlPath="+filepath.Join(cp, e.Name()), "-O", "exit", "x").Run()
	}
}
