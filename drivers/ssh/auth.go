package ssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Key is a key pair made for one build. The driver installs its public half
// on the machine (cloud-init, an EC2 key pair, a VM's guestinfo); Connect
// offers its private half, which is never written anywhere.
type Key struct {
	signer gossh.Signer
	priv   ed25519.PrivateKey
	public string
}

// NewKey makes a fresh ed25519 key pair. comment ends the authorized_keys
// line ("imgbuild-web"), so the key can be recognised on the machine.
func NewKey(comment string) (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("making a build key: %w", err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("making a build key: %w", err)
	}
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey())))
	if comment = strings.TrimSpace(strings.ReplaceAll(comment, "\n", " ")); comment != "" {
		line += " " + comment
	}
	return &Key{signer: signer, priv: priv, public: line}, nil
}

// PEM is the private half in OpenSSH's PEM form, for --debug, which writes
// it to a 0600 file so that a person can log in as the build does.
func (k *Key) PEM() []byte {
	block, err := gossh.MarshalPrivateKey(k.priv, "imgbuild build key")
	if err != nil {
		return nil
	}
	return pem.EncodeToMemory(block)
}

// AuthorizedKey is the public half as one authorized_keys line, without a
// trailing newline: "ssh-ed25519 AAAA... comment".
func (k *Key) AuthorizedKey() string { return k.public }

// PublicKey is the public half.
func (k *Key) PublicKey() gossh.PublicKey { return k.signer.PublicKey() }

// Fingerprint is the public half's SHA256 fingerprint.
func (k *Key) Fingerprint() string { return gossh.FingerprintSHA256(k.signer.PublicKey()) }

// credentials are the ways to log in, loaded once per Connect: what is
// offered and a description of it for error messages.
type credentials struct {
	user    string
	signers []gossh.Signer
	tried   []string // "the build key", "ssh_private_key_file /k (SHA256:...)"
	agent   bool
	cert    *gossh.Certificate
	pass    string
}

// loadCredentials reads the key and certificate files now, so that a wrong
// path or passphrase fails at once rather than after ssh_timeout.
func loadCredentials(o *Options, key *Key) (*credentials, error) {
	c := &credentials{user: o.Username, agent: o.AgentAuth, pass: o.Password}
	if key != nil {
		c.signers = append(c.signers, key.signer)
		c.tried = append(c.tried, "the build key "+key.Fingerprint())
	}
	var fileSigner gossh.Signer
	if o.PrivateKeyFile != "" {
		s, err := readPrivateKey("ssh_private_key_file", o.PrivateKeyFile, o.PrivateKeyPassphrase)
		if err != nil {
			return nil, err
		}
		fileSigner = s
	}
	if o.CertificateFile != "" {
		cert, err := readCertificate(o.CertificateFile)
		if err != nil {
			return nil, err
		}
		c.cert = cert
		if fileSigner != nil {
			if !sameKey(cert.Key, fileSigner.PublicKey()) {
				return nil, fmt.Errorf("ssh_certificate_file %s certifies %s, not the key in ssh_private_key_file %s (%s)",
					o.CertificateFile, gossh.FingerprintSHA256(cert.Key), o.PrivateKeyFile, gossh.FingerprintSHA256(fileSigner.PublicKey()))
			}
			cs, err := gossh.NewCertSigner(cert, fileSigner)
			if err != nil {
				return nil, fmt.Errorf("ssh_certificate_file %s: %w", o.CertificateFile, err)
			}
			c.signers = append(c.signers, cs)
			c.tried = append(c.tried, fmt.Sprintf("the certificate in ssh_certificate_file %s", o.CertificateFile))
		}
	}
	if fileSigner != nil {
		c.addKey("ssh_private_key_file", o.PrivateKeyFile, fileSigner)
	}
	if err := c.addAgentAndPassword("ssh_agent_auth", " (start one, or use ssh_private_key_file)", "ssh_password"); err != nil {
		return nil, err
	}
	return c, nil
}

// bastionCredentials are the bastion's: its own key, agent or password when
// given, else the machine's.
func bastionCredentials(o *Options, key *Key) (*credentials, error) {
	if o.BastionPrivateKeyFile == "" && !o.BastionAgentAuth && o.BastionPassword == "" {
		c, err := loadCredentials(o, key)
		if err != nil {
			return nil, err
		}
		c.user = o.bastionUser()
		return c, nil
	}
	c := &credentials{user: o.bastionUser(), agent: o.BastionAgentAuth, pass: o.BastionPassword}
	if o.BastionPrivateKeyFile != "" {
		s, err := readPrivateKey("ssh_bastion_private_key_file", o.BastionPrivateKeyFile, "")
		if err != nil {
			return nil, err
		}
		c.addKey("ssh_bastion_private_key_file", o.BastionPrivateKeyFile, s)
	}
	if err := c.addAgentAndPassword("ssh_bastion_agent_auth", "", "ssh_bastion_password"); err != nil {
		return nil, err
	}
	return c, nil
}

// addKey adds the key s, read from the file path that the keyword kw
// names, to what c tries.
func (c *credentials) addKey(kw, path string, s gossh.Signer) {
	c.signers = append(c.signers, s)
	c.tried = append(c.tried, fmt.Sprintf("%s %s (%s)", kw, path, gossh.FingerprintSHA256(s.PublicKey())))
}

// addAgentAndPassword adds the ssh-agent's keys, when c uses the agent,
// and c's password, when it has one, to what c tries. Without an agent to
// ask it says so, naming agentKW and adding hint; passKW names the
// password's keyword.
func (c *credentials) addAgentAndPassword(agentKW, hint, passKW string) error {
	if c.agent {
		if os.Getenv("SSH_AUTH_SOCK") == "" {
			return fmt.Errorf("%s is set but SSH_AUTH_SOCK is not: no ssh-agent to ask%s", agentKW, hint)
		}
		c.tried = append(c.tried, "the ssh-agent's keys")
	}
	if c.pass != "" {
		c.tried = append(c.tried, passKW)
	}
	return nil
}

func sameKey(a, b gossh.PublicKey) bool {
	return string(a.Marshal()) == string(b.Marshal())
}

func readPrivateKey(kw, path, passphrase string) (gossh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kw, err)
	}
	var signer gossh.Signer
	if passphrase != "" {
		signer, err = gossh.ParsePrivateKeyWithPassphrase(pem, []byte(passphrase))
	} else {
		signer, err = gossh.ParsePrivateKey(pem)
	}
	var missing *gossh.PassphraseMissingError
	switch {
	case err == nil:
		return signer, nil
	case errors.As(err, &missing):
		return nil, fmt.Errorf("%s %s is encrypted: set ssh_private_key_passphrase (a sensitive var)", kw, path)
	case errors.Is(err, x509.IncorrectPasswordError):
		return nil, fmt.Errorf("%s %s: ssh_private_key_passphrase does not decrypt it", kw, path)
	case passphrase != "" && strings.Contains(err.Error(), "not encrypted"):
		return nil, fmt.Errorf("%s %s is not encrypted, but ssh_private_key_passphrase is set: drop the passphrase", kw, path)
	}
	if _, _, _, _, perr := gossh.ParseAuthorizedKey(pem); perr == nil {
		return nil, fmt.Errorf("%s %s is a public key: give the private half (the file without .pub)", kw, path)
	}
	return nil, fmt.Errorf("%s %s is not a private key this tool reads (OpenSSH, PKCS#1, PKCS#8 or SEC 1 PEM): %v", kw, path, err)
}

func readCertificate(path string) (*gossh.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ssh_certificate_file: %w", err)
	}
	k, _, _, _, err := gossh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, fmt.Errorf("ssh_certificate_file %s is not an OpenSSH certificate: %v", path, err)
	}
	cert, ok := k.(*gossh.Certificate)
	if !ok {
		return nil, fmt.Errorf("ssh_certificate_file %s holds a plain %s public key, not a certificate (ssh-keygen -s makes one: key-cert.pub)", path, k.Type())
	}
	return cert, nil
}

// methods returns the auth methods for one handshake, and a function to
// call once it is over (it closes the agent connection).
func (c *credentials) methods() ([]gossh.AuthMethod, func(), error) {
	done := func() {}
	signers := append([]gossh.Signer(nil), c.signers...)
	if c.agent {
		conn, err := net.Dial("unix", os.Getenv("SSH_AUTH_SOCK"))
		if err != nil {
			return nil, done, fmt.Errorf("ssh-agent at SSH_AUTH_SOCK: %w", err)
		}
		done = func() { conn.Close() }
		as, err := agent.NewClient(conn).Signers()
		if err != nil {
			done()
			return nil, func() {}, fmt.Errorf("ssh-agent at SSH_AUTH_SOCK: %w", err)
		}
		for _, s := range as {
			if c.cert != nil && sameKey(c.cert.Key, s.PublicKey()) {
				if cs, err := gossh.NewCertSigner(c.cert, s); err == nil {
					signers = append(signers, cs)
				}
			}
		}
		signers = append(signers, as...)
	}
	// One publickey method holding every signer: x/crypto tries only the
	// first method of each kind.
	var methods []gossh.AuthMethod
	if len(signers) > 0 {
		methods = append(methods, gossh.PublicKeys(signers...))
	}
	if c.pass != "" {
		pass := c.pass
		methods = append(methods,
			gossh.Password(pass),
			gossh.KeyboardInteractive(func(user, instruction string, questions []string, echos []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range questions {
					answers[i] = pass
				}
				return answers, nil
			}))
	}
	if len(methods) == 0 {
		done()
		return nil, func() {}, errors.New("no credentials to log in with: set ssh_private_key_file, ssh_agent_auth = True or ssh_password")
	}
	return methods, done, nil
}

func (c *credentials) describe() string {
	if len(c.tried) == 0 {
		return "nothing"
	}
	return strings.Join(c.tried, ", ")
}
