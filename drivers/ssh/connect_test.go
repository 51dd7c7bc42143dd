package ssh_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

func otherHostKey(t *testing.T) gossh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyLine(k gossh.PublicKey) string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k)))
}

// connectErr connects and returns the error, failing if it connected; it
// also returns how long it took.
func connectErr(t *testing.T, cfg ssh.Config) (error, time.Duration) {
	t.Helper()
	start := time.Now()
	c, err := ssh.Connect(context.Background(), cfg)
	if err == nil {
		c.Close()
		t.Fatal("Connect succeeded")
	}
	return err, time.Since(start)
}

func TestHostKeyVerification(t *testing.T) {
	srv := sshtest.Start(t)
	wrong := otherHostKey(t)
	wrongKnownHosts := filepath.Join(t.TempDir(), "known_hosts")
	must(t, os.WriteFile(wrongKnownHosts, []byte(knownhosts.Line([]string{srv.Addr()}, wrong)+"\n"), 0o600))
	otherHostOnly := filepath.Join(t.TempDir(), "known_hosts_other")
	must(t, os.WriteFile(otherHostOnly, []byte(knownhosts.Line([]string{"203.0.113.7:22"}, srv.HostKey)+"\n"), 0o600))
	hashed := filepath.Join(t.TempDir(), "known_hosts_hashed")
	must(t, os.WriteFile(hashed, []byte(
		"# comment\n"+
			knownhosts.Line([]string{knownhosts.HashHostname(knownhosts.Normalize(srv.Addr()))}, srv.HostKey)+"\n"), 0o600))

	for _, tc := range []struct {
		name    string
		set     func(o *ssh.Options, cfg *ssh.Config)
		refused []string // parts of the error; nil: connects
	}{
		{"pinned public key", func(o *ssh.Options, _ *ssh.Config) { o.HostKey = srv.HostKeyLine }, nil},
		{"pinned SHA256 fingerprint", func(o *ssh.Options, _ *ssh.Config) { o.HostKey = srv.HostKeyFingerprint }, nil},
		{"ssh-keyscan line", func(o *ssh.Options, _ *ssh.Config) { o.HostKey = srv.Addr() + " " + srv.HostKeyLine }, nil},
		{"known_hosts file", func(o *ssh.Options, _ *ssh.Config) { o.HostKey, o.KnownHosts = "", srv.KnownHostsFile }, nil},
		{"known_hosts file with a hashed name", func(o *ssh.Options, _ *ssh.Config) { o.HostKey, o.KnownHosts = "", hashed }, nil},
		{"key the driver learned", func(o *ssh.Options, cfg *ssh.Config) { o.HostKey, cfg.HostKey = "", srv.HostKey }, nil},

		{"wrong pinned key", func(o *ssh.Options, _ *ssh.Config) { o.HostKey = keyLine(wrong) },
			[]string{"host key mismatch for " + srv.Addr(), "expected " + gossh.FingerprintSHA256(wrong) + " (from ssh_host_key)",
				"the server presented ssh-ed25519 " + srv.HostKeyFingerprint, "update ssh_host_key"}},
		{"wrong pinned fingerprint", func(o *ssh.Options, _ *ssh.Config) { o.HostKey = gossh.FingerprintSHA256(wrong) },
			[]string{"host key mismatch for " + srv.Addr(), "expected " + gossh.FingerprintSHA256(wrong),
				"presented ssh-ed25519 " + srv.HostKeyFingerprint}},
		{"wrong key in known_hosts", func(o *ssh.Options, _ *ssh.Config) { o.HostKey, o.KnownHosts = "", wrongKnownHosts },
			[]string{"host key mismatch for " + srv.Addr(), "expected ssh-ed25519 " + gossh.FingerprintSHA256(wrong) + " (line 1)",
				"(from ssh_known_hosts " + wrongKnownHosts + ")", "presented ssh-ed25519 " + srv.HostKeyFingerprint, "update ssh_known_hosts"}},
		{"host missing from known_hosts", func(o *ssh.Options, _ *ssh.Config) { o.HostKey, o.KnownHosts = "", otherHostOnly },
			[]string{"host " + srv.Addr() + " is not in ssh_known_hosts " + otherHostOnly, "it presented ssh-ed25519 " + srv.HostKeyFingerprint}},
		{"wrong key the driver learned", func(o *ssh.Options, cfg *ssh.Config) { o.HostKey, cfg.HostKey = "", wrong },
			[]string{"host key mismatch", "(from the host key the driver learned)", "presented ssh-ed25519 " + srv.HostKeyFingerprint}},
		{"nothing to verify against", func(o *ssh.Options, _ *ssh.Config) { o.HostKey = "" },
			[]string{"no way to verify the machine's host key: set ssh_host_key, ssh_known_hosts, or ssh_insecure_ignore_host_key = True"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ssh.Config{Options: srv.Options()}
			tc.set(&cfg.Options, &cfg)
			if tc.refused == nil {
				c := connect(t, cfg)
				output(t, c, "true")
				return
			}
			err, took := connectErr(t, cfg)
			mustContain(t, err.Error(), tc.refused...)
			if took > 3*time.Second {
				t.Errorf("refusing took %v: a host key problem must not be retried", took)
			}
		})
	}
}

func TestHostKeyMismatchIsAHostKeyError(t *testing.T) {
	srv := sshtest.Start(t)
	o := srv.Options()
	wrong := otherHostKey(t)
	o.HostKey = keyLine(wrong)
	err, _ := connectErr(t, ssh.Config{Options: o})
	var he *ssh.HostKeyError
	if !errors.As(err, &he) {
		t.Fatalf("error %T %v is not a *ssh.HostKeyError", err, err)
	}
	if he.Addr != srv.Addr() || len(he.Expected) != 1 || he.Expected[0] != gossh.FingerprintSHA256(wrong) ||
		len(he.Presented) != 1 || he.Presented[0] != "ssh-ed25519 "+srv.HostKeyFingerprint {
		t.Errorf("HostKeyError %+v", he)
	}
}

func TestInsecureIgnoreHostKeyConnectsAndWarns(t *testing.T) {
	srv := sshtest.Start(t)
	ui, rec := newUI()
	o := srv.Options()
	o.HostKey = ""
	o.InsecureIgnoreHostKey = true
	c := connect(t, ssh.Config{Options: o, UI: ui})
	output(t, c, "true")
	warnings := rec.Of(event.Warning)
	if len(warnings) != 1 {
		t.Fatalf("warnings: %+v; want one", warnings)
	}
	mustContain(t, warnings[0].Message, "ssh_insecure_ignore_host_key = True", "not verifying the host key of "+srv.Addr(), srv.HostKeyFingerprint, "impersonate")
}

func TestWrongKeyIsRefusedWithAClearMessage(t *testing.T) {
	srv := sshtest.Start(t)
	stranger, err := ssh.NewKey("stranger")
	must(t, err)
	o := srv.Options()
	o.PrivateKeyFile = ""
	o.HandshakeAttempts = 2
	err, took := connectErr(t, ssh.Config{Options: o, Key: stranger})
	mustContain(t, err.Error(),
		"the SSH server at "+srv.Addr()+" refused to let \""+srv.User+"\" in",
		"offered the build key "+stranger.Fingerprint(),
		"after 2 attempts",
		"check ssh_username and that the machine's authorized_keys holds the key")
	if took > 5*time.Second {
		t.Errorf("refusing took %v", took)
	}
}

func TestNothingListeningIsAClearTimeoutWithinSSHTimeout(t *testing.T) {
	port, err := testkit.FreePort() // nothing listens there
	must(t, err)

	o := ssh.Defaults()
	o.Host, o.Port, o.InsecureIgnoreHostKey, o.Password = "127.0.0.1", port, true, "x"
	o.Timeout = 2 * time.Second
	err, took := connectErr(t, ssh.Config{Options: o})
	mustContain(t, err.Error(),
		fmt.Sprintf("no SSH server answered at 127.0.0.1:%d within 2s: ", port),
		"connection refused",
		"; check ssh_host/ssh_port and that the machine booted")
	if took < 2*time.Second || took > 3*time.Second {
		t.Errorf("gave up after %v; want about ssh_timeout (2s)", took)
	}
}

func TestASilentServerTimesOutWithinSSHTimeout(t *testing.T) {
	// It accepts connections but never speaks (a machine half booted).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	o := ssh.Defaults()
	o.Host, o.Port, o.InsecureIgnoreHostKey, o.Password = "127.0.0.1", l.Addr().(*net.TCPAddr).Port, true, "x"
	o.Timeout = 1500 * time.Millisecond
	err, took := connectErr(t, ssh.Config{Options: o})
	mustContain(t, err.Error(), "within 1.5s")
	if took > 3*time.Second {
		t.Errorf("gave up after %v; want about ssh_timeout (1.5s)", took)
	}
}

func TestConnectWaitsForTheMachineToComeUp(t *testing.T) {
	srv := sshtest.Start(t)
	c := dial(t, srv)
	up := srv.Down(t)
	// The server comes back 1.5s after it went down.
	go func() { <-time.After(1500 * time.Millisecond); up() }()
	ui, rec := newUI()
	o := srv.Options()
	start := time.Now()
	c2 := connect(t, ssh.Config{Options: o, UI: ui})
	if took := time.Since(start); took < time.Second {
		t.Errorf("connected after %v, while the server was down for 1.5s", took)
	}
	output(t, c2, "true")
	says := rec.Of(event.Message)
	if len(says) < 2 || !strings.Contains(says[1].Message, "waiting for SSH on "+srv.User+"@"+srv.Addr()) {
		t.Errorf("messages %+v; want a 'waiting for SSH' one", says)
	}
	_ = c
}

func TestADroppedConnectionIsErrDisconnectedAndTheNextCallReconnects(t *testing.T) {
	srv := sshtest.Start(t)
	ui, rec := newUI()
	c := connect(t, ssh.Config{Options: srv.Options(), UI: ui})

	done := startSleep(c)
	if n := srv.DropConnections(); n == 0 {
		t.Fatal("no connection to drop")
	}
	select {
	case err := <-done:
		if !errors.Is(err, engine.ErrDisconnected) {
			t.Fatalf("Run = %v; want an error wrapping engine.ErrDisconnected", err)
		}
		mustContain(t, err.Error(), "connection to the machine was lost", srv.User+"@"+srv.Addr())
		t.Log(err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the connection dropped")
	}
	if got := output(t, c, "echo again"); got != "again" {
		t.Fatalf("after reconnecting: %q", got)
	}
	var reconnected bool
	for _, e := range rec.Of(event.Message) {
		reconnected = reconnected || strings.HasPrefix(e.Message, "reconnecting to ")
	}
	if !reconnected {
		t.Error("no 'reconnecting' message")
	}
	// Transfers reconnect too.
	srv.DropConnections()
	testkit.Eventually(t, "the dropped connection's processes to end", func() bool { return srv.Processes() == 0 })
	var out bytes.Buffer
	if err := c.Download(context.Background(), "/etc/hostname", &out, engine.Transfer{}); err != nil || out.Len() == 0 {
		t.Fatalf("Download after a drop = %v, %d bytes", err, out.Len())
	}
}

func TestARebootDuringACommandIsErrDisconnectedAndTheNextCallWaitsForTheMachine(t *testing.T) {
	srv := sshtest.Start(t)
	c := dial(t, srv)
	done := startSleep(c)
	go srv.Reboot(t, time.Second)
	if err := <-done; !errors.Is(err, engine.ErrDisconnected) {
		t.Fatalf("Run = %v; want ErrDisconnected", err)
	}
	if got := output(t, c, "echo back"); got != "back" {
		t.Fatalf("after the reboot: %q", got)
	}
}

func TestKeepalivesNoticeAMachineThatStoppedAnswering(t *testing.T) {
	srv := sshtest.Start(t)
	o := srv.Options()
	o.KeepAliveInterval = 200 * time.Millisecond
	c := connect(t, ssh.Config{Options: o})
	done := startSleep(c)
	thaw := srv.Freeze(t)
	select {
	case err := <-done:
		if !errors.Is(err, engine.ErrDisconnected) {
			t.Fatalf("Run = %v; want ErrDisconnected", err)
		}
		mustContain(t, err.Error(), "no answer to keepalives for 600ms")
	case <-time.After(5 * time.Second):
		t.Fatal("a frozen machine was not noticed")
	}
	thaw()
}

func TestABastionInThePath(t *testing.T) {
	srv := sshtest.Start(t)
	bastion := srv.StartBastion(t)
	o := srv.Options()
	bastion.Bastion(&o)
	c := connect(t, ssh.Config{Options: o})
	if got := output(t, c, "echo via bastion"); got != "via bastion" {
		t.Fatalf("got %q", got)
	}
	var buf bytes.Buffer
	must(t, c.Download(context.Background(), "/etc/hostname", &buf, engine.Transfer{}))
	if !strings.Contains(bastion.Log(), "direct-tcpip") || !strings.Contains(bastion.Log(), "port "+strconv.Itoa(srv.Port)) {
		t.Errorf("the bastion forwarded nothing to port %d; its log:\n%s", srv.Port, bastion.Log())
	}
	if c.String() != fmt.Sprintf("%s@%s via %s@%s", srv.User, srv.Addr(), bastion.User, bastion.Addr()) {
		t.Errorf("String() = %q", c.String())
	}
	c.Close()
	noProcessesLeft(t, srv, bastion)
}

func TestBastionFailuresNameTheBastion(t *testing.T) {
	srv := sshtest.Start(t)
	bastion := srv.StartBastion(t)
	t.Run("bastion host key mismatch", func(t *testing.T) {
		o := srv.Options()
		bastion.Bastion(&o)
		o.BastionHostKey = keyLine(otherHostKey(t))
		err, _ := connectErr(t, ssh.Config{Options: o})
		mustContain(t, err.Error(), "host key mismatch for "+bastion.Addr(), "(from ssh_bastion_host_key)", bastion.HostKeyFingerprint)
	})
	t.Run("target not listening behind the bastion", func(t *testing.T) {
		o := srv.Options()
		bastion.Bastion(&o)
		o.Port = 1 // nothing listens on port 1
		o.Timeout = time.Second
		err, _ := connectErr(t, ssh.Config{Options: o})
		mustContain(t, err.Error(), "no SSH server answered at 127.0.0.1:1 (through bastion "+bastion.Addr()+") within 1s",
			"the bastion could not reach 127.0.0.1:1", "check ssh_host/ssh_port as the bastion sees them")
	})
	t.Run("bastion refuses the key", func(t *testing.T) {
		o := srv.Options()
		bastion.Bastion(&o)
		stranger := filepath.Join(t.TempDir(), "stranger")
		writeNewKey(t, stranger, "")
		o.BastionPrivateKeyFile = stranger
		o.HandshakeAttempts = 1
		err, _ := connectErr(t, ssh.Config{Options: o})
		mustContain(t, err.Error(), "the SSH server at bastion "+bastion.Addr()+" refused to let", "ssh_bastion_private_key_file "+stranger,
			"check ssh_bastion_username and that the bastion's authorized_keys holds the key")
	})
}

// writeNewKey writes a new ed25519 private key (OpenSSH format, encrypted
// when passphrase is set) to path and returns its public half.
func writeNewKey(t *testing.T, path, passphrase string) gossh.PublicKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	var block *pem.Block
	if passphrase != "" {
		block, err = gossh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	} else {
		block, err = gossh.MarshalPrivateKey(priv, "test")
	}
	must(t, err)
	must(t, os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
	s, err := gossh.NewSignerFromKey(priv)
	must(t, err)
	return s.PublicKey()
}

func TestAPerBuildKeyLogsIn(t *testing.T) {
	srv := sshtest.Start(t)
	key, err := ssh.NewKey("imgbuild-web")
	must(t, err)
	if !strings.HasPrefix(key.AuthorizedKey(), "ssh-ed25519 AAAA") || !strings.HasSuffix(key.AuthorizedKey(), " imgbuild-web") {
		t.Fatalf("AuthorizedKey() = %q", key.AuthorizedKey())
	}
	srv.AddAuthorizedKey(t, key.AuthorizedKey())
	o := srv.Options()
	o.PrivateKeyFile = ""
	c := connect(t, ssh.Config{Options: o, Key: key})
	output(t, c, "true")
	if !strings.Contains(srv.Log(), "Accepted publickey for "+srv.User+" from 127.0.0.1 port") || !strings.Contains(srv.Log(), key.Fingerprint()) {
		t.Errorf("sshd did not log a login with the build key %s", key.Fingerprint())
	}
}

func TestAnEncryptedKeyWithItsPassphrase(t *testing.T) {
	srv := sshtest.Start(t)
	path := filepath.Join(t.TempDir(), "id_enc")
	pub := writeNewKey(t, path, "s3cret passphrase")
	srv.AddAuthorizedKey(t, keyLine(pub))
	o := srv.Options()
	o.PrivateKeyFile = path

	o.PrivateKeyPassphrase = "s3cret passphrase"
	output(t, connect(t, ssh.Config{Options: o}), "true")

	o.PrivateKeyPassphrase = ""
	err, _ := connectErr(t, ssh.Config{Options: o})
	mustContain(t, err.Error(), "ssh_private_key_file "+path+" is encrypted: set ssh_private_key_passphrase")

	o.PrivateKeyPassphrase = "wrong"
	err, _ = connectErr(t, ssh.Config{Options: o})
	mustContain(t, err.Error(), "ssh_private_key_file "+path+": ssh_private_key_passphrase does not decrypt it")
}

func TestKeyFileProblemsAreReportedAtOnce(t *testing.T) {
	srv := sshtest.Start(t)
	dir := t.TempDir()
	pubFile := filepath.Join(dir, "id.pub")
	must(t, os.WriteFile(pubFile, []byte(keyLine(srv.ClientSigner.PublicKey())+"\n"), 0o600))
	for _, tc := range []struct{ file, want string }{
		{filepath.Join(dir, "missing"), "ssh_private_key_file: open " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{pubFile, "ssh_private_key_file " + pubFile + " is a public key: give the private half"},
	} {
		o := srv.Options()
		o.PrivateKeyFile = tc.file
		err, took := connectErr(t, ssh.Config{Options: o})
		mustContain(t, err.Error(), tc.want)
		if took > time.Second {
			t.Errorf("took %v", took)
		}
	}
}

func TestSSHAgentKeysLogIn(t *testing.T) {
	agentBin := testkit.RequireProgram(t, "ssh-agent", "openssh-client")
	srv := sshtest.Start(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command(agentBin, "-D", "-a", sock)
	must(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// The socket file exists from bind(); it answers only from listen().
	var conn net.Conn
	testkit.Eventually(t, "ssh-agent to listen on "+sock, func() bool {
		c, err := net.Dial("unix", sock)
		conn = c
		return err == nil
	})
	defer conn.Close()
	raw, err := gossh.ParseRawPrivateKey(srv.ClientKeyPEM)
	must(t, err)
	must(t, agent.NewClient(conn).Add(agent.AddedKey{PrivateKey: raw}))
	t.Setenv("SSH_AUTH_SOCK", sock)

	o := srv.Options()
	o.PrivateKeyFile = ""
	o.AgentAuth = true
	output(t, connect(t, ssh.Config{Options: o}), "true")

	t.Setenv("SSH_AUTH_SOCK", "")
	err, _ = connectErr(t, ssh.Config{Options: o})
	mustContain(t, err.Error(), "ssh_agent_auth is set but SSH_AUTH_SOCK is not")
}

func TestAnOpenSSHCertificateLogsIn(t *testing.T) {
	keygen := testkit.RequireProgram(t, "ssh-keygen", "openssh-client")
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	caPub := writeNewKey(t, ca, "")
	must(t, os.WriteFile(ca+".pub", []byte(keyLine(caPub)+"\n"), 0o600))
	srv := sshtest.Start(t, sshtest.WithConfig("TrustedUserCAKeys "+ca+".pub"))

	// A key the server does not know, certified by the CA.
	key := filepath.Join(dir, "id")
	pub := writeNewKey(t, key, "")
	must(t, os.WriteFile(key+".pub", []byte(keyLine(pub)+"\n"), 0o600))
	if out, err := exec.Command(keygen, "-q", "-s", ca, "-I", "imgbuild-test", "-n", srv.User, "-V", "-5m:+1h", key+".pub").CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -s: %v: %s", err, out)
	}
	o := srv.Options()
	o.PrivateKeyFile = key
	o.HandshakeAttempts = 1
	err, _ := connectErr(t, ssh.Config{Options: o})
	mustContain(t, err.Error(), "refused to let")

	o.CertificateFile = key + "-cert.pub"
	output(t, connect(t, ssh.Config{Options: o}), "true")

	o.CertificateFile = key + ".pub"
	err, _ = connectErr(t, ssh.Config{Options: o})
	mustContain(t, err.Error(), "holds a plain ssh-ed25519 public key, not a certificate")
}

// noProcessesLeft waits for srv to have nothing running for us.
func noProcessesLeft(t *testing.T, servers ...*sshtest.Server) {
	t.Helper()
	for _, srv := range servers {
		testkit.Eventually(t, "the processes on "+srv.Addr()+" to end after Close", func() bool { return srv.Processes() == 0 })
	}
}

func TestCloseReleasesTheConnectionAndLaterCallsFail(t *testing.T) {
	srv := sshtest.Start(t)
	c, err := ssh.Connect(context.Background(), ssh.Config{Options: srv.Options()})
	must(t, err)
	output(t, c, "true")
	must(t, c.Upload(context.Background(), filepath.Join(t.TempDir(), "f"), strings.NewReader("x"), engine.Transfer{}))
	c.Close()
	noProcessesLeft(t, srv)
	if _, err := c.Run(context.Background(), &engine.Command{Command: "true"}); !errors.Is(err, ssh.ErrClosed) {
		t.Fatalf("Run after Close = %v; want ErrClosed", err)
	}
}

func TestConcurrentCommandsShareOneConnection(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		go func() {
			var out bytes.Buffer
			_, err := c.Run(context.Background(), &engine.Command{Command: fmt.Sprintf("echo %d", i), Stdout: &out})
			if err == nil && out.String() != fmt.Sprintf("%d\n", i) {
				err = fmt.Errorf("command %d printed %q", i, out.String())
			}
			errs <- err
		}()
	}
	for i := 0; i < 20; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// signalReader closes ch once n bytes were read.
type signalReader struct {
	r    io.Reader
	n    int64
	ch   chan struct{}
	read int64
}

func (s *signalReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	s.read += int64(n)
	if s.ch != nil && s.read >= s.n {
		close(s.ch)
		s.ch = nil
	}
	return n, err
}

func TestAConnectionDroppedDuringAnUploadIsErrDisconnected(t *testing.T) {
	srv := sshtest.Start(t)
	c := dial(t, srv)
	dst := filepath.Join(t.TempDir(), "big")
	half := make(chan struct{})
	go func() {
		<-half
		srv.DropConnections()
	}()
	err := c.Upload(context.Background(), dst, &signalReader{r: randomReader(9, 1<<30), n: 16 << 20, ch: half}, engine.Transfer{Size: 1 << 30})
	if !errors.Is(err, engine.ErrDisconnected) {
		t.Fatalf("Upload = %v; want ErrDisconnected", err)
	}
	mustContain(t, err.Error(), "connection to the machine was lost", "upload to "+dst)
	t.Log(err)
	output(t, c, "true") // and it reconnects
}

// TestAccessLetsAPersonLogInAsTheBuildDoes: after Connect, the UI holds how
// to reach the machine, and its key, written to a file, logs the real ssh
// client in (what --debug prints).
func TestAccessLetsAPersonLogInAsTheBuildDoes(t *testing.T) {
	srv := sshtest.Start(t)
	key, err := ssh.NewKey("imgbuild-web")
	must(t, err)
	srv.AddAuthorizedKey(t, key.AuthorizedKey())
	ui, _ := newUI()
	o := srv.Options()
	o.PrivateKeyFile = ""
	connect(t, ssh.Config{Options: o, Key: key, UI: ui})
	a := ui.Access()
	if a == nil || a.User != srv.User || a.Host != srv.Host || a.Port != srv.Port || len(a.Key) == 0 {
		t.Fatalf("access %+v", a)
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	must(t, os.WriteFile(keyFile, a.Key, 0o600))
	out, err := exec.Command("ssh", "-i", keyFile, "-p", strconv.Itoa(a.Port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", a.User+"@"+a.Host, "echo logged in").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "logged in") {
		t.Fatalf("ssh with the build key: %v\n%s", err, out)
	}
}

// TestEndpointHoldsTheVerifiedHostKeyAndTheKeysThatLoggedIn: what another
// client needs to log in as the communicator did, verifying the same key.
func TestEndpointHoldsTheVerifiedHostKeyAndTheKeysThatLoggedIn(t *testing.T) {
	srv := sshtest.Start(t)
	key, err := ssh.NewKey("imgbuild-web")
	must(t, err)
	srv.AddAuthorizedKey(t, key.AuthorizedKey())
	o := srv.Options()
	c := connect(t, ssh.Config{Options: o, Key: key})
	e := c.Endpoint()
	if e.HostKey == nil || gossh.FingerprintSHA256(e.HostKey) != srv.HostKeyFingerprint || !e.Verified {
		t.Errorf("host key %v (verified %v), want %s", e.HostKey, e.Verified, srv.HostKeyFingerprint)
	}
	if len(e.Signers) != 2 || gossh.FingerprintSHA256(e.Signers[0].PublicKey()) != key.Fingerprint() ||
		gossh.FingerprintSHA256(e.Signers[1].PublicKey()) != gossh.FingerprintSHA256(srv.ClientSigner.PublicKey()) {
		t.Errorf("signers %v", e.Signers)
	}
	if e.Options.Addr() != srv.Addr() || e.BastionHostKey != nil {
		t.Errorf("endpoint %+v", e)
	}
	o.HostKey, o.KnownHosts, o.InsecureIgnoreHostKey = "", "", true
	ui, _ := newUI()
	if e := connect(t, ssh.Config{Options: o, UI: ui}).Endpoint(); e.Verified || e.HostKey == nil {
		t.Errorf("insecure endpoint: verified %v, key %v", e.Verified, e.HostKey)
	}
}

// startSleep starts a long command on c and returns once it runs; its
// result comes on the channel returned.
func startSleep(c *ssh.Communicator) <-chan error {
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(context.Background(), &engine.Command{Command: "echo started; sleep 30", Stdout: &signalWriter{match: "started", ch: started}})
		done <- err
	}()
	<-started
	return done
}
