package ssh

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseHostKey: whatever a user pastes into ssh_host_key, parsing does
// not panic, and what it accepts is consistent: a SHA256 fingerprint that
// parses back to itself, and the fingerprint of the key when there is one.
func FuzzParseHostKey(f *testing.F) {
	for _, s := range []string{edKey, edKey + " comment", "h " + edKey, "[h]:22,h2 " + edKey, rsaKey, edFP, edFP + "=",
		"MD5:d2:c6:cd:d2:94:c4:57:7e:fd:ac:26:be:4b:2e:98:cf", "SHA256:", "ssh-ed25519 ", "@cert-authority * " + edKey, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseHostKey(s)
		if err != nil {
			if p != nil {
				t.Fatal("a key and an error")
			}
			return
		}
		if !strings.HasPrefix(p.Fingerprint, "SHA256:") {
			t.Fatalf("fingerprint %q", p.Fingerprint)
		}
		again, err := ParseHostKey(p.Fingerprint)
		if err != nil || again.Fingerprint != p.Fingerprint {
			t.Fatalf("fingerprint %q does not parse back: %v", p.Fingerprint, err)
		}
		if p.Key != nil && !p.Matches(p.Key) {
			t.Fatal("the key does not match its own fingerprint")
		}
	})
}

// FuzzKnownHosts: any known_hosts file either is refused with an error or
// gives a verifier whose callback and algorithm probe do not panic.
func FuzzKnownHosts(f *testing.F) {
	for _, s := range []string{
		"[127.0.0.1]:2222 " + edKey + "\n",
		"# comment\n\n127.0.0.1 " + rsaKey + "\n",
		"|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|aGFzaGhhc2hoYXNoaGFzaGhhc2g= " + edKey + "\n",
		"@revoked * " + edKey + "\n",
		"@cert-authority *.example " + edKey + "\n",
		"!bad,*.example,[h]:* " + edKey + "\n",
		"h ssh-ed25519\n",
		"[127.0.0.1:2222 " + edKey,
	} {
		f.Add(s)
	}
	ed, _ := ParseHostKey(edKey)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content string) {
		path := filepath.Join(dir, "known_hosts")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, addr := range []string{"127.0.0.1:2222", "h:22", "[::1]:22"} {
			v, err := knownHostsVerifier(path, addr)
			if err != nil {
				return
			}
			_ = v.callback(addr, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}, ed.Key)
		}
	})
}

// FuzzPIDSniffer: whatever a command prints, and however it arrives in
// pieces, the caller gets it all, minus only the marker line.
func FuzzPIDSniffer(f *testing.F) {
	f.Add("before\n", "after\nmore", 1, 4242)
	f.Add("", "", 5, 1)
	f.Add("a\nb\nc", "x", 2, 99999)
	f.Fuzz(func(t *testing.T, before, after string, chunk, pid int) {
		if chunk <= 0 || chunk > 1<<16 || pid <= 0 {
			return
		}
		// Login output never holds the marker (it has a fresh nonce) and
		// ends with a newline when the marker follows.
		if before != "" && !strings.HasSuffix(before, "\n") {
			before += "\n"
		}
		var out bytes.Buffer
		p := newPIDSniffer(&out)
		if len(before) > markerLimit || bytes.Contains([]byte(before), p.marker) {
			return
		}
		stream := before + string(p.marker) + itoa(pid) + "\n" + after
		for i := 0; i < len(stream); i += chunk {
			if _, err := p.Write([]byte(stream[i:min(i+chunk, len(stream))])); err != nil {
				t.Fatal(err)
			}
		}
		p.flush()
		if got := p.wait(0); got != pid {
			t.Fatalf("pid %d; want %d", got, pid)
		}
		if out.String() != before+after {
			t.Fatalf("output %q; want %q", out.String(), before+after)
		}
	})
}

func itoa(n int) string {
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
