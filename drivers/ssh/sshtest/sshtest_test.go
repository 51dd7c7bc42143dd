package sshtest_test

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

func TestOpenSSHClientTrustsTheServerAndLogsInWithTheClientKey(t *testing.T) {
	ssh := testkit.RequireProgram(t, "ssh", "openssh-client")
	srv := sshtest.Start(t)
	out, err := exec.Command(ssh, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+srv.KnownHostsFile, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-i", srv.ClientKeyFile, "-p", strconv.Itoa(srv.Port), srv.User+"@"+srv.Host, "echo $USER").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != srv.User {
		t.Fatalf("ssh: %v: %s", err, out)
	}
	if !strings.HasPrefix(srv.HostKeyFingerprint, "SHA256:") || !strings.HasPrefix(srv.HostKeyLine, "ssh-ed25519 ") {
		t.Errorf("host key %q, %q", srv.HostKeyLine, srv.HostKeyFingerprint)
	}
}

func TestDropConnectionsCutsAClientOff(t *testing.T) {
	ssh := testkit.RequireProgram(t, "ssh", "openssh-client")
	srv := sshtest.Start(t)
	cmd := exec.Command(ssh, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+srv.KnownHostsFile,
		"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-i", srv.ClientKeyFile, "-p", strconv.Itoa(srv.Port),
		srv.User+"@"+srv.Host, "sleep 60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// The session starts before its command does: wait for the command.
	testkit.Eventually(t, "the session's command to run", func() bool {
		return strings.Contains(srv.Log(), "Starting session") && srv.Runs("sleep 60")
	})
	if n := srv.DropConnections(); n < 2 {
		t.Errorf("dropped %d processes; want the connection's sshd and its command", n)
	}
	select {
	case err := <-exited:
		if err == nil {
			t.Error("ssh exited cleanly after its connection was cut")
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("ssh still runs after its connection was cut")
	}
}
