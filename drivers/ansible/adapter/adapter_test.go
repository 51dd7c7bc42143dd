package adapter_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/imgbuild/imgbuild/drivers/ansible/adapter"
	"github.com/imgbuild/imgbuild/drivers/chroot"
	"github.com/imgbuild/imgbuild/drivers/chroot/chroottest"
	"github.com/imgbuild/imgbuild/drivers/local"
	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// client runs OpenSSH's ssh, sftp and scp against an adapter, verifying
// its host key and logging in with its one-time key.
type client struct {
	t       *testing.T
	a       *adapter.Adapter
	key     string
	known   string
	options []string
}

func start(t *testing.T, comm engine.Communicator) *client {
	t.Helper()
	for _, prog := range []string{"ssh", "sftp", "scp"} {
		testkit.RequireProgram(t, prog, "openssh-client")
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := adapter.Start(ctx, adapter.Options{Comm: comm, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		a.Close()
	})
	dir := t.TempDir()
	c := &client{t: t, a: a, key: filepath.Join(dir, "key"), known: filepath.Join(dir, "known_hosts")}
	must(t, os.WriteFile(c.key, a.ClientKeyPEM(), 0o600))
	must(t, os.WriteFile(c.known, []byte(a.KnownHostsLine()+"\n"), 0o600))
	c.options = []string{"-F", "/dev/null", "-i", c.key, "-o", "UserKnownHostsFile=" + c.known, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "User=root"}
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ssh runs a command through the adapter and returns its output and exit
// status.
func (c *client) ssh(stdin string, args ...string) (string, int) {
	c.t.Helper()
	argv := append(append(append([]string(nil), c.options...), "-p", strconv.Itoa(c.a.Port()), c.a.Host()), args...)
	cmd := exec.Command("ssh", argv...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	status := 0
	if ee, ok := err.(*exec.ExitError); ok {
		status = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("ssh: %v", err)
	}
	return string(out), status
}

// refused runs a command with ssh (given what, a credential made wrong)
// and fails the test unless ssh gives up with status 255 and want in its
// output.
func (c *client) refused(what, want string) {
	c.t.Helper()
	out, status := c.ssh("", "echo in")
	if status != 255 || !strings.Contains(out, want) {
		c.t.Errorf("%s: status %d, output %q", what, status, out)
	}
}

// sftp runs a batch of sftp commands and returns the output; it fails the
// test when sftp does.
func (c *client) sftp(batch string) string {
	c.t.Helper()
	argv := append(append([]string(nil), c.options...), "-P", strconv.Itoa(c.a.Port()), "-b", "-", c.a.Host())
	cmd := exec.Command("sftp", argv...)
	cmd.Stdin = strings.NewReader(batch)
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("sftp %q: %v\n%s", batch, err, out)
	}
	return string(out)
}

// scp runs scp with the given arguments (remote paths as "HOST:path").
func (c *client) scp(args ...string) (string, error) {
	c.t.Helper()
	argv := append(append([]string(nil), c.options...), "-P", strconv.Itoa(c.a.Port()))
	for _, a := range args {
		argv = append(argv, strings.ReplaceAll(a, "HOST:", c.a.Host()+":"))
	}
	out, err := exec.Command("scp", argv...).CombinedOutput()
	return string(out), err
}

// busyboxMachine is a chroot communicator on a busybox tree with the
// commands the adapter's file operations use.
func busyboxMachine(t *testing.T) (engine.Communicator, string) {
	t.Helper()
	testkit.RequireRoot(t)
	root := chroottest.BusyboxTree(t)
	for _, a := range []string{"mv", "ln", "rmdir", "chown", "truncate", "tr"} {
		must(t, os.Symlink("busybox", filepath.Join(root, "bin", a)))
	}
	comm, err := chroot.New(root, chroot.Options{})
	must(t, err)
	t.Cleanup(func() { comm.Close() })
	return comm, root
}

func TestCommandsRunOnTheMachineWithTheirInputOutputAndStatus(t *testing.T) {
	comm, root := busyboxMachine(t)
	c := start(t, comm)
	out, status := c.ssh("", "echo hello from $(cat /etc/passwd | head -c 4); exit 3")
	if out != "hello from root\n" || status != 3 {
		t.Errorf("output %q, status %d", out, status)
	}
	out, status = c.ssh("line one\nline two\n", "cat > /tmp/in; wc -l < /tmp/in")
	if strings.TrimSpace(out) != "2" || status != 0 {
		t.Errorf("stdin: output %q, status %d", out, status)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "tmp/in")); string(got) != "line one\nline two\n" {
		t.Errorf("the command wrote %q", got)
	}
	// ssh -tt (as Ansible runs commands) neither sends EOF nor gets a
	// terminal; the command ends all the same.
	out, status = c.ssh("", "-tt", "echo done; echo err >&2")
	if !strings.Contains(out, "done") || !strings.Contains(out, "err") || status != 0 {
		t.Errorf("with -tt: output %q, status %d", out, status)
	}
	if s := c.a.Stats(); s.Commands != 3 || s.Connections != 3 {
		t.Errorf("stats %+v", s)
	}
}

func TestOnlyTheOneTimeKeyLogsIn(t *testing.T) {
	comm, _ := busyboxMachine(t)
	c := start(t, comm)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := gossh.MarshalPrivateKey(other, "")
	must(t, os.WriteFile(c.key, pem.EncodeToMemory(block), 0o600))
	c.refused("another key", "Permission denied (publickey)")
}

func TestTheClientVerifiesTheAdaptersHostKey(t *testing.T) {
	comm, _ := busyboxMachine(t)
	c := start(t, comm)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	k, _ := gossh.NewPublicKey(pub)
	line := strings.Fields(c.a.KnownHostsLine())[0] + " " + string(bytes.TrimSpace(gossh.MarshalAuthorizedKey(k)))
	must(t, os.WriteFile(c.known, []byte(line+"\n"), 0o600))
	c.refused("a wrong known_hosts key", "REMOTE HOST IDENTIFICATION HAS CHANGED")
}

func TestSFTPMovesFilesAndChangesThem(t *testing.T) {
	comm, root := busyboxMachine(t)
	c := start(t, comm)
	local := t.TempDir()
	must(t, os.WriteFile(filepath.Join(local, "module.py"), []byte("print('hi')\n"), 0o700))
	out := c.sftp(strings.Join([]string{
		"mkdir /tmp/work",
		"put " + filepath.Join(local, "module.py") + " /tmp/work/module.py",
		"rename /tmp/work/module.py /tmp/work/renamed.py",
		"chmod 640 /tmp/work/renamed.py",
		"symlink /tmp/work/renamed.py /tmp/work/link",
		"ls -l /tmp/work",
		"get /tmp/work/link " + filepath.Join(local, "back.py"),
		"put " + filepath.Join(local, "module.py") + " /tmp/work/gone",
		"rm /tmp/work/gone",
	}, "\n") + "\n")
	got, err := os.ReadFile(filepath.Join(root, "tmp/work/renamed.py"))
	fi, _ := os.Stat(filepath.Join(root, "tmp/work/renamed.py"))
	if err != nil || string(got) != "print('hi')\n" || fi.Mode().Perm() != 0o640 {
		t.Errorf("uploaded %q (%v), mode %v", got, err, fi.Mode())
	}
	if l, _ := os.Readlink(filepath.Join(root, "tmp/work/link")); l != "/tmp/work/renamed.py" {
		t.Errorf("link to %q", l)
	}
	if back, _ := os.ReadFile(filepath.Join(local, "back.py")); string(back) != "print('hi')\n" {
		t.Errorf("downloaded %q", back)
	}
	if _, err := os.Stat(filepath.Join(root, "tmp/work/gone")); !os.IsNotExist(err) {
		t.Errorf("removed file: %v", err)
	}
	for _, want := range []string{"renamed.py", "link"} {
		if !strings.Contains(out, want) {
			t.Errorf("ls lacks %s:\n%s", want, out)
		}
	}
}

func TestSFTPReportsAMissingFileAsSuch(t *testing.T) {
	comm, _ := busyboxMachine(t)
	c := start(t, comm)
	argv := append(append([]string(nil), c.options...), "-P", strconv.Itoa(c.a.Port()), "-b", "-", c.a.Host())
	cmd := exec.Command("sftp", argv...)
	cmd.Stdin = strings.NewReader("get /no/such/file " + filepath.Join(t.TempDir(), "x") + "\n")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `File "/no/such/file" not found`) {
		t.Errorf("sftp get of a missing file: %v\n%s", err, out)
	}
}

func TestSCPBothProtocolsCopyFilesAndDirectories(t *testing.T) {
	comm, root := busyboxMachine(t)
	c := start(t, comm)
	local := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(local, "tree/sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(local, "tree/a"), []byte("a\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(local, "tree/sub/b"), []byte("b\n"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "srv"), 0o755))
	// -O is the legacy protocol the adapter speaks itself; without it,
	// scp uses SFTP.
	for _, legacy := range []bool{true, false} {
		flag := "-O"
		if !legacy {
			flag = "-q"
		}
		dst := "srv/" + strconv.FormatBool(legacy)
		if out, err := c.scp(flag, "-r", "-p", filepath.Join(local, "tree"), "HOST:/"+dst); err != nil {
			t.Fatalf("scp %s upload: %v\n%s", flag, err, out)
		}
		if got, _ := os.ReadFile(filepath.Join(root, dst, "sub/b")); string(got) != "b\n" {
			t.Errorf("scp %s: sub/b = %q", flag, got)
		}
		if fi, err := os.Stat(filepath.Join(root, dst, "a")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("scp %s: a: %v %v", flag, fi, err)
		}
		back := filepath.Join(t.TempDir(), "back")
		if out, err := c.scp(flag, "-r", "HOST:/"+dst, back); err != nil {
			t.Fatalf("scp %s download: %v\n%s", flag, err, out)
		}
		if got, _ := os.ReadFile(filepath.Join(back, "sub/b")); string(got) != "b\n" {
			t.Errorf("scp %s download: sub/b = %q", flag, got)
		}
	}
	if out, err := c.scp("-O", "HOST:/no/such", t.TempDir()); err == nil || !strings.Contains(out, "No such file") {
		t.Errorf("scp -O of a missing file: %v\n%s", err, out)
	}
}

// TestALocalBuildsDirectoryIsTheMachine: for the local communicator,
// commands see this machine's paths, and SFTP's paths are mapped into the
// build's directory; a path outside it is refused.
func TestALocalBuildsDirectoryIsTheMachine(t *testing.T) {
	root := t.TempDir()
	comm, err := local.NewCommunicator(root, nil)
	must(t, err)
	t.Cleanup(func() { comm.Close() })
	c := start(t, comm)
	out, _ := c.ssh("", `echo "$IMGBUILD_ROOT"; pwd`)
	if out != root+"\n"+root+"\n" {
		t.Errorf("commands run in %q", out)
	}
	src := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(src, []byte("x"), 0o644))
	c.sftp("mkdir " + root + "/etc\nput " + src + " " + root + "/etc/f\n")
	if got, _ := os.ReadFile(filepath.Join(root, "etc/f")); string(got) != "x" {
		t.Errorf("uploaded %q", got)
	}
	argv := append(append([]string(nil), c.options...), "-P", strconv.Itoa(c.a.Port()), "-b", "-", c.a.Host())
	cmd := exec.Command("sftp", argv...)
	outside := filepath.Join(t.TempDir(), "outside")
	cmd.Stdin = strings.NewReader("put " + src + " " + outside + "\n")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("an upload outside the build's directory succeeded:\n%s", out)
	}
	if _, err := os.Stat(outside); !os.IsNotExist(err) {
		t.Errorf("the file outside was written: %v", err)
	}
}

func TestOverSSHCommandsAndFilesReachTheRemoteMachine(t *testing.T) {
	srv := sshtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	comm, err := ssh.Connect(ctx, ssh.Config{Options: srv.Options()})
	must(t, err)
	t.Cleanup(func() { comm.Close() })
	c := start(t, comm)
	dir := t.TempDir()
	out, status := c.ssh("", "cd "+dir+" && echo over ssh > f && cat f")
	if out != "over ssh\n" || status != 0 {
		t.Errorf("output %q, status %d", out, status)
	}
	back := filepath.Join(t.TempDir(), "back")
	c.sftp("get " + dir + "/f " + back + "\n")
	if got, _ := os.ReadFile(back); string(got) != "over ssh\n" {
		t.Errorf("downloaded %q", got)
	}
}

// TestClosingStopsWhatRuns: a command still running when the adapter
// closes is cancelled, and the client's connection ends.
func TestClosingStopsWhatRuns(t *testing.T) {
	comm, root := busyboxMachine(t)
	c := start(t, comm)
	argv := append(append([]string(nil), c.options...), "-p", strconv.Itoa(c.a.Port()), c.a.Host(), "echo started; sleep 600")
	cmd := exec.Command("ssh", argv...)
	var out bytes.Buffer
	pr, pw, _ := os.Pipe()
	cmd.Stdout = pw
	must(t, cmd.Start())
	pw.Close()
	line := make([]byte, 8)
	if _, err := pr.Read(line); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.a.Close()
	cmd.Wait()
	out.ReadFrom(pr)
	if time.Since(start) > 10*time.Second {
		t.Errorf("closing took %s", time.Since(start))
	}
	if p := chroottest.ProcessesIn(root); len(p) > 0 {
		t.Errorf("left running: %v", p)
	}
}
