// Package sshtest starts a private OpenSSH sshd for tests: the real server
// the SSH communicator and every SSH driver (null, amazon, qemu, vsphere)
// are tested against, never a mock of it.
//
// Each Server listens on 127.0.0.1 on a free port, with its own ed25519 host
// key, key authentication only (a client key the harness makes, plus any
// added with AddAuthorizedKey), SFTP through internal-sftp, and login as the
// user running the tests (root allowed with keys). It is stopped when the
// test ends, and its log is printed if the test failed.
//
// When sshd is not installed, Start skips the test through testkit.Skip: a
// failure under IMGBUILD_INTEGRATION=1, where CI must not skip.
//
// The package knows nothing of builds or drivers beyond ssh.Options, which
// Server.Options fills in so a driver's test can point its SSH at it.
//
// sshtest.go stays one file of over 500 lines: it is one harness (the
// private sshd's configuration, keys, start, and the helpers tests call on
// the running server), read top to bottom.
package sshtest

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// Server is one running sshd.
type Server struct {
	// Host is the address it listens on ("127.0.0.1"), Port its port.
	Host string
	Port int
	// User is the user it lets in: the one running the tests.
	User string
	// HostKey is its host key; HostKeyLine the same as a public key line
	// ("ssh-ed25519 AAAA..."), HostKeyFingerprint its "SHA256:..."
	// fingerprint.
	HostKey            gossh.PublicKey
	HostKeyLine        string
	HostKeyFingerprint string
	// KnownHostsFile is a known_hosts file naming this server's key, for
	// OpenSSH clients and ssh_known_hosts.
	KnownHostsFile string
	// ClientKeyPEM is a private key (OpenSSH format, unencrypted) the server
	// accepts; ClientKeyFile holds it (mode 0600); ClientSigner signs with
	// it.
	ClientKeyPEM  []byte
	ClientKeyFile string
	ClientSigner  gossh.Signer
	// Dir holds the server's files (config, keys, log); removed at the end.
	Dir string

	sshd    string
	setup   setup
	logPath string
	keysMu  sync.Mutex // authorized_keys
	life    sync.Mutex // held while sshd starts, stops or reboots
	stopped bool
	procMu  sync.Mutex // the running sshd
	proc    *exec.Cmd
	exited  chan struct{}
}

// Option changes how a Server is set up.
type Option func(*setup)

type setup struct {
	config    []string
	clientKey []byte
	logLevel  string
}

// WithConfig adds lines to sshd_config ("TrustedUserCAKeys /path",
// "PasswordAuthentication yes"). Later lines do not override earlier ones
// in sshd_config, so these go first.
func WithConfig(lines ...string) Option {
	return func(s *setup) { s.config = append(s.config, lines...) }
}

// WithClientKey makes the server use the given private key (PEM) as its
// client key instead of making one: two servers then take the same key.
func WithClientKey(pemBytes []byte) Option {
	return func(s *setup) { s.clientKey = pemBytes }
}

// WithLogLevel sets sshd's LogLevel (default VERBOSE; DEBUG1 logs
// forwarded connections, which shows traffic through a bastion).
func WithLogLevel(level string) Option {
	return func(s *setup) { s.logLevel = level }
}

// SSHD returns the path of sshd, or skips the test (fails it under
// IMGBUILD_INTEGRATION=1) when it is not installed.
func SSHD(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("sshd"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	testkit.Skip(t, "sshd is not installed: apt-get install openssh-server")
	return ""
}

// Start starts an sshd for the test and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	sshd := SSHD(t)
	var st setup
	for _, o := range opts {
		o(&st)
	}
	if st.logLevel == "" {
		st.logLevel = "VERBOSE"
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("sshtest: current user: %v", err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		testkit.Skipf(t, "sshd needs its privilege separation directory /run/sshd (sudo mkdir -p /run/sshd): %v", err)
	}
	dir := t.TempDir()
	s := &Server{Host: "127.0.0.1", User: u.Username, Dir: dir, sshd: sshd, logPath: filepath.Join(dir, "sshd.log")}

	// Host key.
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	writeKey(t, filepath.Join(dir, "host_ed25519"), hostPriv)
	hostSigner, _ := gossh.NewSignerFromKey(hostPriv)
	s.HostKey = hostSigner.PublicKey()
	s.HostKeyLine = strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.HostKey)))
	s.HostKeyFingerprint = gossh.FingerprintSHA256(s.HostKey)

	// Client key.
	if st.clientKey == nil {
		_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		block, err := gossh.MarshalPrivateKey(clientPriv, "imgbuild-sshtest")
		if err != nil {
			t.Fatal(err)
		}
		st.clientKey = pem.EncodeToMemory(block)
	}
	s.ClientKeyPEM = st.clientKey
	s.ClientKeyFile = filepath.Join(dir, "client_key")
	if err := os.WriteFile(s.ClientKeyFile, s.ClientKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if s.ClientSigner, err = gossh.ParsePrivateKey(s.ClientKeyPEM); err != nil {
		t.Fatalf("sshtest: client key: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), gossh.MarshalAuthorizedKey(s.ClientSigner.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("sshd log (%s:%d):\n%s", s.Host, s.Port, s.Log())
		}
	})
	s.setup = st
	var lastErr error
	for try := 0; try < 5; try++ {
		port, err := testkit.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		s.Port = port
		if lastErr = s.start(port); lastErr == nil {
			break
		}
		if !strings.Contains(lastErr.Error(), "Address already in use") {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("sshtest: %v", lastErr)
	}
	s.KnownHostsFile = filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[%s]:%d %s\n", s.Host, s.Port, s.HostKeyLine)
	if err := os.WriteFile(s.KnownHostsFile, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func writeKey(t testing.TB, path string, priv ed25519.PrivateKey) {
	t.Helper()
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (s *Server) start(port int) error {
	st := s.setup
	conf := append(append([]string{}, st.config...),
		fmt.Sprintf("ListenAddress %s:%d", s.Host, port),
		"HostKey "+filepath.Join(s.Dir, "host_ed25519"),
		"PidFile "+filepath.Join(s.Dir, "sshd.pid"),
		"AuthorizedKeysFile "+filepath.Join(s.Dir, "authorized_keys"),
		"PermitRootLogin prohibit-password",
		"StrictModes no",
		"UsePAM no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"Subsystem sftp internal-sftp",
		"AllowTcpForwarding yes",
		"UseDNS no",
		"PrintMotd no",
		"PrintLastLog no",
		"MaxStartups 200",
		"MaxSessions 200",
		"LogLevel "+st.logLevel,
	)
	cfgPath := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.sshd, "-D", "-e", "-f", cfgPath)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.sshd, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.procMu.Lock()
	s.proc, s.exited = cmd, exited
	s.procMu.Unlock()

	died, up := false, false
	testkit.Poll(10*time.Second, func() bool {
		select {
		case <-exited:
			died = true
		default:
			up = banner(s.Addr())
		}
		return died || up
	})
	switch {
	case died:
		return fmt.Errorf("sshd exited at start: %s", strings.TrimSpace(s.Log()))
	case up:
		return nil
	}
	s.kill()
	return fmt.Errorf("sshd did not answer on %s within 10s: %s", s.Addr(), s.Log())
}

// banner reports whether an SSH server greets us at addr.
func banner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Options returns SSH options that reach this server: its address, the
// test user, the client key file and the host key pinned. Other keywords
// have their declared defaults, but ssh_timeout is 10s.
func (s *Server) Options() ssh.Options {
	o := ssh.Defaults()
	o.Host = s.Host
	o.Port = s.Port
	o.Username = s.User
	o.PrivateKeyFile = s.ClientKeyFile
	o.HostKey = s.HostKeyLine
	o.Timeout = 10 * time.Second
	return o
}

// StartBastion starts a second sshd that takes the same client key and logs
// the connections it forwards, to stand between a client and this server.
// Route options through it with Bastion.
func (s *Server) StartBastion(t testing.TB, opts ...Option) *Server {
	t.Helper()
	return Start(t, append([]Option{WithClientKey(s.ClientKeyPEM), WithLogLevel("DEBUG1")}, opts...)...)
}

// Bastion routes o through b: it sets the ssh_bastion_* options to b's
// address, user, client key and host key.
func (b *Server) Bastion(o *ssh.Options) {
	o.BastionHost = b.Host
	o.BastionPort = b.Port
	o.BastionUsername = b.User
	o.BastionPrivateKeyFile = b.ClientKeyFile
	o.BastionHostKey = b.HostKeyLine
}

// AddAuthorizedKey lets in the holder of the private half of line, a
// public key in authorized_keys form (options allowed: "cert-authority ...").
func (s *Server) AddAuthorizedKey(t testing.TB, line string) {
	t.Helper()
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.Dir, "authorized_keys"), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.TrimSpace(line) + "\n"); err != nil {
		t.Fatal(err)
	}
}

// Log returns what sshd logged so far.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// DropConnections kills, with SIGKILL, every process the server started:
// the per-connection sshd processes and the commands they run. Clients see
// their connections cut, as when the machine reboots or the network fails;
// the server goes on accepting new ones. It returns how many processes it
// killed.
func (s *Server) DropConnections() int {
	pid := s.pid()
	if pid == 0 {
		return 0
	}
	pids := testkit.Descendants(pid)
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	return len(pids)
}

// Runs reports whether a process the server started runs a command line
// holding s: a session's command, which starts a moment after sshd logs
// the session.
func (s *Server) Runs(cmdline string) bool {
	pid := s.pid()
	if pid == 0 {
		return false
	}
	for _, p := range testkit.Descendants(pid) {
		line, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "cmdline"))
		if err == nil && strings.Contains(string(bytes.ReplaceAll(line, []byte{0}, []byte{' '})), cmdline) {
			return true
		}
	}
	return false
}

// Processes counts the processes the server started that still run: one or
// two per open connection, plus the commands they run. A test checks with it
// that a client closed its connections (nothing leaked); a connection just
// closed may take a moment to go.
func (s *Server) Processes() int {
	pid := s.pid()
	if pid == 0 {
		return 0
	}
	n := 0
	for _, p := range testkit.Descendants(pid) {
		// Zombies wait for their parent; they are gone all the same.
		if st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "stat")); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
				continue
			}
		}
		n++
	}
	return n
}

// Reaped reports whether every process the server started has ended and
// been reaped (no zombie either), so that CPU counts their time.
func (s *Server) Reaped() bool { return len(testkit.Descendants(s.pid())) == 0 }

// CPU is the processor time used by the connections the server has served
// and that have ended (their sshd processes and the commands they ran), as
// the kernel counts it in 10ms ticks; a connection just closed may take a
// moment to be counted. Benchmarks use it to see the server's share of the
// work.
func (s *Server) CPU() time.Duration {
	pid := s.pid()
	if pid == 0 {
		return 0
	}
	st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(st, ')')
	if i < 0 {
		return 0
	}
	// After "pid (comm)": state is field 3; cutime and cstime are 16 and 17.
	f := strings.Fields(string(st[i+1:]))
	if len(f) < 15 {
		return 0
	}
	cu, _ := strconv.ParseInt(f[13], 10, 64)
	cs, _ := strconv.ParseInt(f[14], 10, 64)
	return time.Duration(cu+cs) * 10 * time.Millisecond
}

// pid is the running sshd's process id, 0 if none.
func (s *Server) pid() int {
	s.procMu.Lock()
	defer s.procMu.Unlock()
	if s.proc == nil || s.proc.Process == nil {
		return 0
	}
	return s.proc.Process.Pid
}

// Stop stops the server and the processes it started. It is called when
// the test ends; calling it earlier makes the address refuse connections.
func (s *Server) Stop() {
	s.life.Lock()
	defer s.life.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	s.kill()
}

// kill stops sshd and every process it started.
func (s *Server) kill() {
	s.procMu.Lock()
	proc, exited := s.proc, s.exited
	s.procMu.Unlock()
	if proc == nil {
		return
	}
	kids := testkit.Descendants(proc.Process.Pid)
	_ = proc.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = proc.Process.Kill()
		<-exited
	}
	for _, p := range kids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

// Reboot simulates the machine rebooting: every connection is cut and its
// commands killed, nothing answers on the port for down, then the server
// comes back on the same port with the same keys. It returns once the
// server is back. It may be called from another goroutine than the test's:
// a failure to come back is reported with t.Errorf.
func (s *Server) Reboot(t testing.TB, down time.Duration) {
	t.Helper()
	up := s.Down(t)
	<-time.After(down) // the machine is rebooting: nothing to wait for
	up()
}

// Down takes the machine down, as the first half of a reboot: every
// connection is cut and its commands killed, and nothing answers on the
// port once Down returns. up brings the server back on the same port with
// the same keys, and returns once it answers; it may be called from
// another goroutine than the test's, and reports a failure to come back
// with t.Errorf.
func (s *Server) Down(t testing.TB) (up func()) {
	t.Helper()
	s.life.Lock()
	defer s.life.Unlock()
	if s.stopped {
		return func() {}
	}
	s.kill()
	return func() {
		s.life.Lock()
		defer s.life.Unlock()
		if s.stopped {
			return
		}
		if err := s.start(s.Port); err != nil {
			t.Errorf("sshtest: coming back from reboot: %v", err)
		}
	}
}

// Freeze stops (SIGSTOP) every process the server started, so that its
// connections stay open but nothing answers on them: a machine that hung or
// a network that silently drops packets. thaw resumes them; it is also done
// when the test ends.
func (s *Server) Freeze(t testing.TB) (thaw func()) {
	t.Helper()
	pids := testkit.Descendants(s.pid())
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGSTOP)
	}
	var once sync.Once
	thaw = func() {
		once.Do(func() {
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGCONT)
			}
		})
	}
	t.Cleanup(thaw)
	return thaw
}
