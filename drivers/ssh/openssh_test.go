package ssh_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// openSSH writes the OpenSSH client files of e into a short directory of
// the test's own.
func openSSH(t *testing.T, e ssh.Endpoint) *ssh.OpenSSHClient {
	t.Helper()
	dir, err := os.MkdirTemp("", "imgbuild-openssh-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c, err := e.OpenSSH(context.Background(), dir, "machine", "the test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// OpenSSH's ssh logs in with the config imgbuild writes, with the keys its
// agent lends and host key checking on: a machine with another host key
// is refused.
func TestOpenSSHLogsInAsTheCommunicatorDidAndChecksTheHostKey(t *testing.T) {
	testkit.RequireProgram(t, "ssh", "openssh-client")
	srv := sshtest.Start(t)
	e := dial(t, srv).Endpoint()
	c := openSSH(t, e)
	conf, err := os.ReadFile(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "StrictHostKeyChecking yes") || strings.Contains(string(conf), "StrictHostKeyChecking no") || strings.Contains(string(conf), "IdentityFile") {
		t.Errorf("ssh_config:\n%s", conf)
	}
	out, err := exec.Command("ssh", "-F", c.Config, c.Alias, "echo logged in as $(id -un)").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "logged in as "+srv.User {
		t.Fatalf("ssh: %v: %s\nconfig:\n%s", err, out, conf)
	}

	// The same machine presenting a host key imgbuild did not accept.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := gossh.NewSignerFromKey(priv)
	e.HostKey = other.PublicKey()
	c = openSSH(t, e)
	out, err = exec.Command("ssh", "-F", c.Config, c.Alias, "true").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Host key verification failed") {
		t.Errorf("ssh with another host key: %v: %s", err, out)
	}
}

func TestOpenSSHRefusesWhatOpenSSHCannotBeGiven(t *testing.T) {
	srv := sshtest.Start(t)
	e := dial(t, srv).Endpoint()
	dir := t.TempDir()
	noKey := e
	noKey.HostKey = nil
	if _, err := noKey.OpenSSH(context.Background(), dir, "m", "testinfra"); err == nil || err.Error() != "imgbuild has no host key of "+srv.Addr()+" to give testinfra" {
		t.Errorf("no host key: %v", err)
	}
	password := e
	password.Signers = nil
	if _, err := password.OpenSSH(context.Background(), filepath.Join(dir), "m", "testinfra"); err == nil || !strings.Contains(err.Error(), "with ssh_password, which testinfra's ssh cannot be given without sshpass") {
		t.Errorf("password: %v", err)
	}
}
