package ssh

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// PinnedKey is a parsed ssh_host_key: a whole public key, or only its
// SHA256 fingerprint.
type PinnedKey struct {
	// Key is the public key, nil when only a fingerprint was given.
	Key gossh.PublicKey
	// Fingerprint is the key's "SHA256:..." fingerprint, always set.
	Fingerprint string
}

// ParseHostKey parses a pinned host key as users copy it:
//
//   - a fingerprint, "SHA256:" and unpadded base64 (ssh-keygen -l);
//   - a public key, "ssh-ed25519 AAAA... comment" (a .pub file);
//   - a known_hosts or ssh-keyscan line, "host ssh-ed25519 AAAA...", whose
//     host is ignored.
//
// MD5 fingerprints are refused: they are too weak to pin.
func ParseHostKey(s string) (*PinnedKey, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return nil, errors.New("is empty")
	case strings.HasPrefix(s, "SHA256:"):
		b64 := strings.TrimRight(strings.TrimPrefix(s, "SHA256:"), "=")
		raw, err := base64.RawStdEncoding.DecodeString(b64)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("%q is not a SHA256 fingerprint: want \"SHA256:\" and 43 base64 characters, as ssh-keygen -lf key.pub prints", s)
		}
		return &PinnedKey{Fingerprint: "SHA256:" + b64}, nil
	case strings.HasPrefix(s, "MD5:") || looksLikeMD5(s):
		return nil, fmt.Errorf("%q is an MD5 fingerprint, too weak to pin: use the SHA256 one (ssh-keygen -l -E sha256 -f key.pub)", s)
	case strings.Contains(s, "\n"):
		return nil, errors.New("holds more than one line: pin one key")
	}
	if k, _, _, _, err := gossh.ParseAuthorizedKey([]byte(s)); err == nil {
		return &PinnedKey{Key: k, Fingerprint: gossh.FingerprintSHA256(k)}, nil
	}
	if _, _, k, _, _, err := gossh.ParseKnownHosts([]byte(s)); err == nil && k != nil {
		return &PinnedKey{Key: k, Fingerprint: gossh.FingerprintSHA256(k)}, nil
	}
	return nil, fmt.Errorf("%q is neither a public key (\"ssh-ed25519 AAAA...\") nor a fingerprint (\"SHA256:...\")", abbreviate(s))
}

func looksLikeMD5(s string) bool {
	// aa:bb:...: 16 hex pairs.
	parts := strings.Split(s, ":")
	if len(parts) != 16 {
		return false
	}
	for _, p := range parts {
		if len(p) != 2 || strings.Trim(p, "0123456789abcdefABCDEF") != "" {
			return false
		}
	}
	return true
}

func abbreviate(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// Matches reports whether key is the pinned key.
func (p *PinnedKey) Matches(key gossh.PublicKey) bool {
	return gossh.FingerprintSHA256(key) == p.Fingerprint
}

// HostKeyError is a host key that could not be verified: it did not match
// the expected one, or the host was not in the known_hosts file. The
// connection is refused and not retried.
type HostKeyError struct {
	// Addr is the host:port connected to.
	Addr string
	// Source says where the expected keys came from ("ssh_host_key",
	// "ssh_known_hosts /path", "the host key the driver learned").
	Source string
	// Expected are the keys accepted, as "SHA256:..." fingerprints (with
	// the key type and the file's line number for known_hosts); empty when
	// the host was not known at all.
	Expected []string
	// Presented are the keys the server presented, as "ssh-ed25519
	// SHA256:...": one, or one per kind of key asked for when only a
	// fingerprint was pinned.
	Presented []string
	// Revoked is set when the presented key is marked @revoked.
	Revoked bool
}

// Error names the host, the keys expected and presented, and what to do.
func (e *HostKeyError) Error() string {
	presented := strings.Join(e.Presented, ", then ")
	switch {
	case e.Revoked:
		return fmt.Sprintf("host key of %s is revoked in %s: it presented %s; refusing to connect", e.Addr, e.Source, presented)
	case len(e.Expected) == 0:
		return fmt.Sprintf("host %s is not in %s (it presented %s); refusing to connect: add it to the file, or pin it with ssh_host_key", e.Addr, e.Source, presented)
	}
	return fmt.Sprintf("host key mismatch for %s: expected %s (from %s), but the server presented %s; refusing to connect: someone may be impersonating the machine, or its host key changed (then update %s)",
		e.Addr, strings.Join(e.Expected, " or "), e.Source, presented, sourceKeyword(e.Source))
}

func sourceKeyword(source string) string {
	kw, _, _ := strings.Cut(source, " ")
	if strings.HasPrefix(kw, "ssh_") {
		return kw
	}
	return "the pinned key"
}

// verifier checks a server's host key: the callback, the host key
// algorithms to ask for so that the server presents the kind of key we can
// check (each set is tried in turn while the key presented does not match;
// nil means the defaults), and whether verification is off.
type verifier struct {
	callback      gossh.HostKeyCallback
	algorithmSets [][]string
	insecure      bool
}

// fingerprintAlgorithmSets are the kinds of host key, most likely first, to
// ask for in turn when only a fingerprint is pinned.
var fingerprintAlgorithmSets = [][]string{
	{gossh.KeyAlgoED25519},
	{gossh.KeyAlgoECDSA256},
	{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA},
	{gossh.KeyAlgoECDSA384},
	{gossh.KeyAlgoECDSA521},
}

func describeKey(k gossh.PublicKey) string {
	return k.Type() + " " + gossh.FingerprintSHA256(k)
}

// pinnedVerifier accepts exactly the pinned key.
func pinnedVerifier(p *PinnedKey, source string) *verifier {
	v := &verifier{callback: func(hostname string, remote net.Addr, key gossh.PublicKey) error {
		if p.Matches(key) {
			return nil
		}
		return &HostKeyError{Addr: hostname, Source: source, Expected: []string{p.Fingerprint},
			Presented: []string{describeKey(key)}}
	}}
	if p.Key != nil {
		v.algorithmSets = [][]string{algorithmsFor(p.Key.Type())}
	} else {
		// The fingerprint does not say which kind of key it is: ask for
		// each kind in turn until one matches.
		v.algorithmSets = fingerprintAlgorithmSets
	}
	return v
}

// knownHostsVerifier checks keys against an OpenSSH known_hosts file
// (hashed names, [host]:port, @revoked and @cert-authority markers). It asks
// the server for the kinds of key the file holds for addr.
func knownHostsVerifier(path, addr string) (*verifier, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("ssh_known_hosts: %w", err)
	}
	cb, err := knownhosts.New(path)
	if err != nil {
		return nil, fmt.Errorf("ssh_known_hosts: %w", err)
	}
	source := "ssh_known_hosts " + path
	v := &verifier{callback: func(hostname string, remote net.Addr, key gossh.PublicKey) error {
		err := cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &re):
			return &HostKeyError{Addr: hostname, Source: source, Revoked: true,
				Presented: []string{describeKey(key)}}
		case errors.As(err, &ke):
			he := &HostKeyError{Addr: hostname, Source: source, Presented: []string{describeKey(key)}}
			for _, w := range ke.Want {
				he.Expected = append(he.Expected, fmt.Sprintf("%s %s (line %d)", w.Key.Type(), gossh.FingerprintSHA256(w.Key), w.Line))
			}
			return he
		}
		return err
	}}
	if algs := knownAlgorithms(cb, addr); len(algs) > 0 {
		v.algorithmSets = [][]string{algs}
	}
	return v, nil
}

// knownAlgorithms asks the known_hosts callback which keys it holds for addr
// by offering it a key it cannot know: the KeyError lists them.
func knownAlgorithms(cb gossh.HostKeyCallback, addr string) []string {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil
	}
	probe, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return nil
	}
	// The callback matches on addr; the remote address is only parsed, so
	// a placeholder does (resolving addr here would query DNS).
	remote := &net.TCPAddr{IP: net.IPv4zero}
	var ke *knownhosts.KeyError
	if !errors.As(cb(addr, remote, probe.PublicKey()), &ke) {
		return nil
	}
	var algs []string
	for _, w := range ke.Want {
		algs = append(algs, algorithmsFor(w.Key.Type())...)
	}
	return dedupe(algs)
}

// algorithmsFor lists the host key algorithms that make a server present a
// key of type keyType.
func algorithmsFor(keyType string) []string {
	if keyType == gossh.KeyAlgoRSA {
		return []string{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA}
	}
	return []string{keyType}
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// hostKeyVerifier picks how to verify the machine's host key, in order: the
// pinned ssh_host_key, the ssh_known_hosts file, the explicit opt-out, the
// key the driver learned, else an error.
func hostKeyVerifier(o *Options, learned gossh.PublicKey) (*verifier, error) {
	return pickVerifier(o, "machine", o.HostKey, "ssh_host_key", o.Addr(), learned)
}

// bastionVerifier is hostKeyVerifier for the bastion, which has no learned
// key.
func bastionVerifier(o *Options, addr string) (*verifier, error) {
	return pickVerifier(o, "bastion", o.BastionHostKey, "ssh_bastion_host_key", addr, nil)
}

// pickVerifier is the choice of hostKeyVerifier for one host: pinned is its
// pinned key, given by keyword; who names the host in the error.
func pickVerifier(o *Options, who, pinned, keyword, addr string, learned gossh.PublicKey) (*verifier, error) {
	switch {
	case pinned != "":
		p, err := ParseHostKey(pinned)
		if err != nil {
			return nil, fmt.Errorf("%s %v", keyword, err)
		}
		return pinnedVerifier(p, keyword), nil
	case o.KnownHosts != "":
		return knownHostsVerifier(o.KnownHosts, addr)
	case o.InsecureIgnoreHostKey:
		return &verifier{callback: gossh.InsecureIgnoreHostKey(), insecure: true}, nil
	case learned != nil:
		return pinnedVerifier(&PinnedKey{Key: learned, Fingerprint: gossh.FingerprintSHA256(learned)}, "the host key the driver learned"), nil
	}
	return nil, fmt.Errorf("no way to verify the %s's host key: set %s, ssh_known_hosts, or ssh_insecure_ignore_host_key = True", who, keyword)
}
