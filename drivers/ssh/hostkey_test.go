package ssh

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

const (
	rsaKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCsq7nny1SbdDbLfQWxlaPr+jI1z9XQEHTtpudclgEVDt7h2XlI2/cM3F3mzWXYR12ctrEGoOylHDP2aDc7DhOl7dSQMnNKTZFstXG4tbVY52sIkzX8f9ryia9ZOyRd3Ssbh4uuXho8IMKY65ISJYFnVt1jfI+DGLnMnsMwKQk1k5L+ora5PN0+7nai2ncMuA3PTSEvkhMgg+HidZDAX7ew7/DxjoCe//RwJUO91FSGH+K0nxGRsLBod/OMEZqWnOefZ4p7xEE9uDZbaUqHIl8Nr6ssPCL59lvdUqci4pnQi6sFjuTX3ZYNiRSuZlQ7LeES/gAJuXSC9TaZ5kgtY6ef"
	rsaFP  = "SHA256:5UgHGK7hZoplARt8/CXPp0rrpMlpyLT9JJvv1kytum0"
)

func TestParseHostKeyAcceptsWhatUsersCopy(t *testing.T) {
	for _, tc := range []struct {
		in, fp string
		full   bool
	}{
		{edKey, edFP, true},
		{edKey + " root@web-1", edFP, true},
		{"  " + edKey + "\n", edFP, true},
		{"203.0.113.10 " + edKey, edFP, true},
		{"[203.0.113.10]:2222,web-1 " + edKey, edFP, true},
		{rsaKey, rsaFP, true},
		{edFP, edFP, false},
		{edFP + "=", edFP, false},
	} {
		p, err := ParseHostKey(tc.in)
		if err != nil {
			t.Errorf("ParseHostKey(%q): %v", tc.in, err)
			continue
		}
		if p.Fingerprint != tc.fp || (p.Key != nil) != tc.full {
			t.Errorf("ParseHostKey(%q) = %s, key %v; want %s, key %v", tc.in, p.Fingerprint, p.Key != nil, tc.fp, tc.full)
		}
	}
}

func TestParseHostKeyRefusesWithAReason(t *testing.T) {
	for _, tc := range []struct{ in, msg string }{
		{"", "is empty"},
		{"SHA256:tooshort", "is not a SHA256 fingerprint: want \"SHA256:\" and 43 base64 characters"},
		{"SHA256:" + strings.Repeat("!", 43), "is not a SHA256 fingerprint"},
		{"MD5:d2:c6:cd:d2:94:c4:57:7e:fd:ac:26:be:4b:2e:98:cf", "is an MD5 fingerprint, too weak to pin"},
		{"d2:c6:cd:d2:94:c4:57:7e:fd:ac:26:be:4b:2e:98:cf", "is an MD5 fingerprint"},
		{edKey + "\n" + rsaKey, "holds more than one line"},
		{"ssh-ed25519 AAAAnotbase64", "is neither a public key"},
		{"-----BEGIN OPENSSH PRIVATE KEY-----", "is neither a public key"},
	} {
		_, err := ParseHostKey(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseHostKey(%q) = %v; want an error containing %q", tc.in, err, tc.msg)
		}
	}
}

func TestPinnedRSAKeyAsksForRSAHostKeys(t *testing.T) {
	p, err := ParseHostKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	v := pinnedVerifier(p, "ssh_host_key")
	if len(v.algorithmSets) != 1 || strings.Join(v.algorithmSets[0], ",") != "rsa-sha2-512,rsa-sha2-256,ssh-rsa" {
		t.Fatalf("algorithm sets %v", v.algorithmSets)
	}
	fp, _ := ParseHostKey(rsaFP)
	if v := pinnedVerifier(fp, "ssh_host_key"); len(v.algorithmSets) != len(fingerprintAlgorithmSets) {
		t.Fatalf("a bare fingerprint asks for %v", v.algorithmSets)
	}
}

func TestKnownHostsAsksForTheKindsOfKeyItHolds(t *testing.T) {
	ed, _ := ParseHostKey(edKey)
	rsa, _ := ParseHostKey(rsaKey)
	path := filepath.Join(t.TempDir(), "known_hosts")
	content := "[127.0.0.1]:2222 " + rsaKey + "\n" + "[127.0.0.1]:2222 " + edKey + "\nother.example " + edKey + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := knownHostsVerifier(path, "127.0.0.1:2222")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.algorithmSets) != 1 || strings.Join(v.algorithmSets[0], ",") != "rsa-sha2-512,rsa-sha2-256,ssh-rsa,ssh-ed25519" {
		t.Fatalf("algorithm sets %v", v.algorithmSets)
	}
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2222}
	if err := v.callback("127.0.0.1:2222", addr, ed.Key); err != nil {
		t.Errorf("known key refused: %v", err)
	}
	if err := v.callback("127.0.0.1:2222", addr, rsa.Key); err != nil {
		t.Errorf("known key refused: %v", err)
	}
	// Unknown hosts leave the defaults.
	if v, _ := knownHostsVerifier(path, "127.0.0.1:22"); v.algorithmSets != nil {
		t.Errorf("unknown host asks for %v", v.algorithmSets)
	}
}

func TestKnownHostsFileProblems(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("# fine\nhost ssh-ed25519 notakey\n"), 0o600)
	for _, tc := range []struct{ path, msg string }{
		{filepath.Join(dir, "missing"), "ssh_known_hosts: stat " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{bad, "ssh_known_hosts: knownhosts: " + bad + ":2: "},
	} {
		_, err := knownHostsVerifier(tc.path, "h:22")
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("knownHostsVerifier(%s) = %v; want %q", tc.path, err, tc.msg)
		}
	}
}

func TestRevokedKeyIsRefused(t *testing.T) {
	ed, _ := ParseHostKey(edKey)
	path := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(path, []byte("@revoked * "+edKey+"\n"), 0o600)
	v, err := knownHostsVerifier(path, "h:22")
	if err != nil {
		t.Fatal(err)
	}
	err = v.callback("h:22", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}, ed.Key)
	var he *HostKeyError
	if !errors.As(err, &he) || !he.Revoked || !strings.Contains(err.Error(), "host key of h:22 is revoked in ssh_known_hosts "+path) {
		t.Fatalf("callback = %v", err)
	}
}

func TestNewKeyMakesAnEd25519PairWhosePrivateHalfStaysInMemory(t *testing.T) {
	k, err := NewKey("imgbuild web\nbuild")
	if err != nil {
		t.Fatal(err)
	}
	pub, comment, _, _, err := gossh.ParseAuthorizedKey([]byte(k.AuthorizedKey()))
	if err != nil {
		t.Fatal(err)
	}
	if pub.Type() != gossh.KeyAlgoED25519 || comment != "imgbuild web build" || strings.Contains(k.AuthorizedKey(), "\n") {
		t.Errorf("AuthorizedKey() = %q", k.AuthorizedKey())
	}
	if gossh.FingerprintSHA256(pub) != k.Fingerprint() || !bytes.Equal(pub.Marshal(), k.PublicKey().Marshal()) {
		t.Error("the public half does not match")
	}
	k2, _ := NewKey("")
	if k2.AuthorizedKey() == k.AuthorizedKey() || strings.Count(k2.AuthorizedKey(), " ") != 1 {
		t.Errorf("second key %q", k2.AuthorizedKey())
	}
}

func TestPIDSnifferPassesOutputThroughAndFindsThePID(t *testing.T) {
	for _, chunk := range []int{1, 3, 7, 1000} {
		var out bytes.Buffer
		p := newPIDSniffer(&out)
		stream := "motd line\n" + string(p.marker) + "4242\nreal output\nno newline"
		for i := 0; i < len(stream); i += chunk {
			if _, err := p.Write([]byte(stream[i:min(i+chunk, len(stream))])); err != nil {
				t.Fatal(err)
			}
		}
		p.flush()
		if got := p.wait(0); got != 4242 {
			t.Errorf("chunk %d: pid %d", chunk, got)
		}
		if out.String() != "motd line\nreal output\nno newline" {
			t.Errorf("chunk %d: output %q", chunk, out.String())
		}
	}
}

func TestPIDSnifferGivesUpOnOutputWithoutAMarker(t *testing.T) {
	var out bytes.Buffer
	p := newPIDSniffer(&out)
	big := bytes.Repeat([]byte("x"), markerLimit+10)
	p.Write(big)
	p.Write([]byte("\nimgbuild-pid-000000000000 1\n"))
	p.flush()
	if p.wait(0) != 0 || out.Len() != len(big)+len("\nimgbuild-pid-000000000000 1\n") {
		t.Fatalf("pid %d, %d bytes out", p.wait(0), out.Len())
	}
}
