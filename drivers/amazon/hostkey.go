package amazon

import (
	"strings"

	gossh "golang.org/x/crypto/ssh"
)

// ConsoleHostKey finds the host keys cloud-init prints on an instance's
// console between "-----BEGIN SSH HOST KEY KEYS-----" and "-----END SSH
// HOST KEY KEYS-----" (lines may carry a prefix such as "ec2: " or a
// kernel timestamp) and returns the strongest: ed25519, else ECDSA, else
// RSA. It returns nil when the console shows no complete block. The last
// block wins: the console may show several boots.
func ConsoleHostKey(console string) gossh.PublicKey {
	var keys []gossh.PublicKey
	in := false
	var block []gossh.PublicKey
	for _, line := range strings.Split(console, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.Contains(line, "-----BEGIN SSH HOST KEY KEYS-----"):
			in, block = true, nil
			continue
		case strings.Contains(line, "-----END SSH HOST KEY KEYS-----"):
			if in && len(block) > 0 {
				keys = block
			}
			in = false
			continue
		}
		if !in {
			continue
		}
		for _, t := range []string{"ssh-ed25519 ", "ecdsa-sha2-", "ssh-rsa "} {
			if i := strings.Index(line, t); i >= 0 {
				if k, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line[i:])); err == nil {
					block = append(block, k)
				}
				break
			}
		}
	}
	for _, prefer := range []string{gossh.KeyAlgoED25519, "ecdsa-sha2-", gossh.KeyAlgoRSA} {
		for _, k := range keys {
			if strings.HasPrefix(k.Type(), prefer) {
				return k
			}
		}
	}
	return nil
}
