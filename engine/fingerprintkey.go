package engine

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FingerprintKey is the key that secrets are hashed with before they count
// in a fingerprint: HMAC-SHA256(key, secret). The key lives on this
// machine (or in the CI system's secrets), never in state, so a state file
// that leaks does not let anyone test a guessed secret against it: without
// the key, the digest of a guess cannot be computed.
type FingerprintKey struct {
	key []byte
}

// FingerprintKeyEnv names the environment variable that gives the key as
// text (at least 16 characters), so that CI runners sharing state hash
// secrets alike.
const FingerprintKeyEnv = "IMGBUILD_FINGERPRINT_KEY"

// NewFingerprintKey returns a key from raw bytes (tests, and the text of
// FingerprintKeyEnv).
func NewFingerprintKey(raw []byte) *FingerprintKey {
	sum := sha256.Sum256(append([]byte("imgbuild fingerprint key\x00"), raw...))
	return &FingerprintKey{key: sum[:]}
}

// Hash is the digest a secret counts through: "hmac:" and 32 hex digits.
func (k *FingerprintKey) Hash(secret string) string {
	return "hmac:" + k.mac("secret\x00" + secret)[:32]
}

// ID names the key without revealing it (a digest of a constant under the
// key), so that a plan can tell a changed secret from a different key.
func (k *FingerprintKey) ID() string { return k.mac("key id")[:16] }

func (k *FingerprintKey) mac(s string) string {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// DefaultFingerprintKeyFile is where the key is kept when
// FingerprintKeyEnv is not set: imgbuild/fingerprint.key in the user's
// configuration directory ($XDG_CONFIG_HOME, else ~/.config).
func DefaultFingerprintKeyFile() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the user configuration directory for the fingerprint key: %w (set %s)", err, FingerprintKeyEnv)
	}
	return filepath.Join(dir, "imgbuild", "fingerprint.key"), nil
}

// LoadFingerprintKey returns the key given by env (FingerprintKeyEnv's
// value, "" when unset), else the one in the file at path, which it makes
// (32 random bytes, mode 0600) the first time. A key file that others may
// read is refused: its key would let them test guesses.
func LoadFingerprintKey(env, path string) (*FingerprintKey, error) {
	if env != "" {
		if len(env) < 16 {
			return nil, fmt.Errorf("%s is %d characters long: give at least 16 (such as the output of openssl rand -hex 32)", FingerprintKeyEnv, len(env))
		}
		return NewFingerprintKey([]byte(env)), nil
	}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("creating the fingerprint key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, err = f.Write([]byte(hex.EncodeToString(raw) + "\n"))
			err = errors.Join(err, f.Close())
		}
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("creating the fingerprint key %s: %w", path, err)
		}
		// Made here, or by a run that started at the same moment.
		return LoadFingerprintKey("", path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the fingerprint key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("the fingerprint key %s may be read by others (mode %04o): chmod 600 %s", path, st.Mode().Perm(), path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the fingerprint key: %w", err)
	}
	if len(raw) < 16 {
		return nil, fmt.Errorf("the fingerprint key %s is too short: remove it and imgbuild makes a new one (builds with secrets then rebuild once)", path)
	}
	return NewFingerprintKey(raw), nil
}
