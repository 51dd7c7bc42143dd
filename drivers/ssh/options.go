package ssh

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/imgbuild/imgbuild/engine/schema"
)

// Options are the SSH communicator's keywords, shared by every driver that
// reaches its machine over SSH. Drivers embed them with
//
//	SSH ssh.Options `kw:",squash"`
//
// so that the keywords are declared once, documented once and read the same
// way everywhere.
type Options struct {
	Host     string `kw:"ssh_host" doc:"Address (name or IP) of the machine to connect to. Drivers that launch the machine fill it in themselves."`
	Port     int    `kw:"ssh_port" default:"22" doc:"TCP port of the machine's SSH server."`
	Username string `kw:"ssh_username" default:"root" doc:"User to log in as."`

	Password             string `kw:"ssh_password,sensitive" doc:"Password to log in with (password or keyboard-interactive authentication)."`
	PrivateKeyFile       string `kw:"ssh_private_key_file" path:"file" pathscope:"machine" doc:"Private key to log in with, in OpenSSH or PEM format."`
	PrivateKeyPassphrase string `kw:"ssh_private_key_passphrase,sensitive" doc:"Passphrase of an encrypted ssh_private_key_file."`
	AgentAuth            bool   `kw:"ssh_agent_auth" doc:"Also offer the keys of the ssh-agent at $SSH_AUTH_SOCK."`
	CertificateFile      string `kw:"ssh_certificate_file" path:"file" pathscope:"machine" doc:"OpenSSH certificate (key-cert.pub) for ssh_private_key_file or an agent key."`

	HostKey               string `kw:"ssh_host_key" doc:"The machine's host key, pinned: its public key (\"ssh-ed25519 AAAA...\") or its fingerprint (\"SHA256:...\", as ssh-keygen -l prints it)."`
	KnownHosts            string `kw:"ssh_known_hosts" path:"file" pathscope:"machine" doc:"known_hosts file to verify the machine's host key (and the bastion's) against."`
	InsecureIgnoreHostKey bool   `kw:"ssh_insecure_ignore_host_key" doc:"Do not verify host keys. Anyone on the network path could impersonate the machine; a warning is printed."`

	Timeout           time.Duration `kw:"ssh_timeout" default:"5m" doc:"How long to wait for the machine's SSH server to answer and let us in."`
	HandshakeAttempts int           `kw:"ssh_handshake_attempts" default:"10" doc:"How many times to retry when the server answers but the handshake or login fails (keys installed late by cloud-init, say)."`
	KeepAliveInterval time.Duration `kw:"ssh_keep_alive_interval" default:"5s" doc:"How often to check that the connection is alive; 0 turns keepalives off. Three unanswered checks drop the connection."`

	BastionHost           string `kw:"ssh_bastion_host" doc:"Jump host to reach the machine through (like ssh -J)."`
	BastionPort           int    `kw:"ssh_bastion_port" default:"22" doc:"TCP port of the bastion's SSH server."`
	BastionUsername       string `kw:"ssh_bastion_username" doc:"User on the bastion; defaults to ssh_username."`
	BastionPassword       string `kw:"ssh_bastion_password,sensitive" doc:"Password for the bastion."`
	BastionPrivateKeyFile string `kw:"ssh_bastion_private_key_file" path:"file" pathscope:"machine" doc:"Private key for the bastion (unencrypted)."`
	BastionAgentAuth      bool   `kw:"ssh_bastion_agent_auth" doc:"Offer the ssh-agent's keys to the bastion."`
	BastionHostKey        string `kw:"ssh_bastion_host_key" doc:"The bastion's host key, pinned: public key or SHA256: fingerprint."`
}

// Require says what a driver cannot learn by itself, and so what the user
// must set. The zero value suits a driver that launches the machine, learns
// its address and host key, and installs a per-build key on it.
type Require struct {
	// Host: ssh_host must be given (the driver does not launch the
	// machine, so it cannot learn its address).
	Host bool
	// HostKeyPolicy: one of ssh_host_key, ssh_known_hosts or
	// ssh_insecure_ignore_host_key must be given (the driver cannot learn
	// the host key out of band).
	HostKeyPolicy bool
	// Credentials: one of ssh_private_key_file, ssh_agent_auth or
	// ssh_password must be given (the driver installs no per-build key).
	Credentials bool
}

// Validate checks the options beyond their types: keywords that exclude each
// other, keywords that need another, and what req says the user must give.
// deferred holds the keywords whose values come from other builds' outputs;
// they are not checked. Errors are *schema.FieldError naming one keyword.
//
// A driver calls it from its config's Validate:
//
//	func (c *Config) Validate(d schema.Deferred) error {
//		return c.SSH.Validate(d, ssh.Require{})
//	}
func (o *Options) Validate(deferred schema.Deferred, req Require) error {
	known := func(kw string, set bool) bool { return set || deferred.Has(kw) }

	if req.Host && !known("ssh_host", o.Host != "") {
		return schema.Errorf("ssh_host", "is required: the address (name or IP) of the machine to connect to")
	}
	if !deferred.Has("ssh_port") && (o.Port < 1 || o.Port > 65535) {
		return schema.Errorf("ssh_port", "%d is not a TCP port (1 to 65535)", o.Port)
	}
	if !known("ssh_username", o.Username != "") {
		return schema.Errorf("ssh_username", "must not be empty")
	}
	if o.Timeout <= 0 {
		return schema.Errorf("ssh_timeout", "must be more than 0 (it is how long to wait for the machine)")
	}
	if o.HandshakeAttempts < 1 {
		return schema.Errorf("ssh_handshake_attempts", "%d is less than 1", o.HandshakeAttempts)
	}

	// Host key policy: exactly one source, or none when the driver learns
	// the key by itself.
	hostKey := known("ssh_host_key", o.HostKey != "")
	knownHosts := known("ssh_known_hosts", o.KnownHosts != "")
	switch {
	case hostKey && knownHosts:
		return schema.Errorf("ssh_known_hosts", "cannot be used with ssh_host_key: pin the key or name a known_hosts file, not both")
	case o.InsecureIgnoreHostKey && hostKey:
		return schema.Errorf("ssh_insecure_ignore_host_key", "contradicts ssh_host_key: either verify the pinned key or turn verification off, not both")
	case o.InsecureIgnoreHostKey && knownHosts:
		return schema.Errorf("ssh_insecure_ignore_host_key", "contradicts ssh_known_hosts: either verify against the file or turn verification off, not both")
	}
	if o.HostKey != "" && !deferred.Has("ssh_host_key") {
		if _, err := ParseHostKey(o.HostKey); err != nil {
			return schema.Errorf("ssh_host_key", "%v", err)
		}
	}
	if req.HostKeyPolicy && !hostKey && !knownHosts && !o.InsecureIgnoreHostKey {
		return schema.Errorf("ssh_host_key", "is needed to verify the machine: set ssh_host_key (its public key or SHA256: fingerprint, see ssh-keyscan), ssh_known_hosts (a known_hosts file), or ssh_insecure_ignore_host_key = True to skip verification")
	}

	// Credentials.
	keyFile := known("ssh_private_key_file", o.PrivateKeyFile != "")
	if known("ssh_private_key_passphrase", o.PrivateKeyPassphrase != "") && !keyFile {
		return schema.Errorf("ssh_private_key_passphrase", "is set but ssh_private_key_file is not: the passphrase decrypts that file")
	}
	if known("ssh_certificate_file", o.CertificateFile != "") && !keyFile && !o.AgentAuth {
		return schema.Errorf("ssh_certificate_file", "needs the key it certifies: set ssh_private_key_file or ssh_agent_auth = True")
	}
	if req.Credentials && !keyFile && !o.AgentAuth && !known("ssh_password", o.Password != "") {
		return schema.Errorf("ssh_private_key_file", "no way to log in: set ssh_private_key_file, ssh_agent_auth = True or ssh_password")
	}

	// Bastion.
	bastion := known("ssh_bastion_host", o.BastionHost != "")
	for _, b := range []struct {
		kw  string
		set bool
	}{
		{"ssh_bastion_username", o.BastionUsername != ""},
		{"ssh_bastion_password", o.BastionPassword != ""},
		{"ssh_bastion_private_key_file", o.BastionPrivateKeyFile != ""},
		{"ssh_bastion_agent_auth", o.BastionAgentAuth},
		{"ssh_bastion_host_key", o.BastionHostKey != ""},
	} {
		if known(b.kw, b.set) && !bastion {
			return schema.Errorf(b.kw, "is set but ssh_bastion_host is not")
		}
	}
	if bastion {
		if !deferred.Has("ssh_bastion_port") && (o.BastionPort < 1 || o.BastionPort > 65535) {
			return schema.Errorf("ssh_bastion_port", "%d is not a TCP port (1 to 65535)", o.BastionPort)
		}
		if o.BastionHostKey != "" && !deferred.Has("ssh_bastion_host_key") {
			if _, err := ParseHostKey(o.BastionHostKey); err != nil {
				return schema.Errorf("ssh_bastion_host_key", "%v", err)
			}
		}
		if !known("ssh_bastion_host_key", o.BastionHostKey != "") && !knownHosts && !o.InsecureIgnoreHostKey {
			return schema.Errorf("ssh_bastion_host_key", "is needed to verify the bastion: set ssh_bastion_host_key, ssh_known_hosts, or ssh_insecure_ignore_host_key = True to skip verification")
		}
	}
	return nil
}

// Addr is the machine's address as host:port.
func (o *Options) Addr() string { return net.JoinHostPort(o.Host, strconv.Itoa(o.Port)) }

// ResolvePaths makes the relative file paths among the options (keys,
// certificate, known_hosts) relative to dir, the description's workspace.
func (o *Options) ResolvePaths(dir string) {
	for _, p := range []*string{&o.PrivateKeyFile, &o.CertificateFile, &o.KnownHosts, &o.BastionPrivateKeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// String describes where the options connect to, for messages:
// "root@203.0.113.10:22" or "root@10.0.0.5:22 via admin@bastion:22".
func (o *Options) String() string {
	s := o.Username + "@" + o.Addr()
	if o.BastionHost != "" {
		s += fmt.Sprintf(" via %s@%s", o.bastionUser(), net.JoinHostPort(o.BastionHost, strconv.Itoa(o.BastionPort)))
	}
	return s
}

func (o *Options) bastionUser() string {
	if o.BastionUsername != "" {
		return o.BastionUsername
	}
	return o.Username
}

// Defaults returns Options holding the declared defaults, for drivers and
// tests that build options in Go rather than from a description.
func Defaults() Options {
	var o Options
	s := schema.Of("ssh", "", &o)
	if _, err := s.Decode(nil, &o, schema.Options{}); err != nil {
		panic("ssh: defaults do not decode: " + err.Error())
	}
	return o
}
