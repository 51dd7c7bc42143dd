package ssh

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/imgbuild/imgbuild/engine/panics"
)

// signerAgent is an ssh-agent holding the keys imgbuild logged in to the
// machine with, so that another SSH client run on this machine
// (ansible-playbook with use_proxy = False, testinfra) logs in the same way
// without the private keys ever being written to a file.
type signerAgent struct {
	signers []gossh.Signer
}

var errReadOnly = errors.New("imgbuild's agent only signs")

func (a *signerAgent) List() ([]*agent.Key, error) {
	var out []*agent.Key
	for _, s := range a.signers {
		pub := s.PublicKey()
		out = append(out, &agent.Key{Format: pub.Type(), Blob: pub.Marshal(), Comment: "imgbuild"})
	}
	return out, nil
}

func (a *signerAgent) Sign(key gossh.PublicKey, data []byte) (*gossh.Signature, error) {
	return a.SignWithFlags(key, data, 0)
}

// SignWithFlags implements agent.ExtendedAgent: OpenSSH asks for
// rsa-sha2-256 and -512 signatures by flag.
func (a *signerAgent) SignWithFlags(key gossh.PublicKey, data []byte, flags agent.SignatureFlags) (*gossh.Signature, error) {
	for _, s := range a.signers {
		if !bytes.Equal(s.PublicKey().Marshal(), key.Marshal()) {
			continue
		}
		if as, ok := s.(gossh.AlgorithmSigner); ok {
			switch {
			case flags&agent.SignatureFlagRsaSha256 != 0:
				return as.SignWithAlgorithm(nil, data, gossh.KeyAlgoRSASHA256)
			case flags&agent.SignatureFlagRsaSha512 != 0:
				return as.SignWithAlgorithm(nil, data, gossh.KeyAlgoRSASHA512)
			}
		}
		return s.Sign(nil, data)
	}
	return nil, errors.New("imgbuild's agent holds no such key")
}

func (a *signerAgent) Signers() ([]gossh.Signer, error) { return a.signers, nil }
func (a *signerAgent) Add(agent.AddedKey) error         { return errReadOnly }
func (a *signerAgent) Remove(gossh.PublicKey) error     { return errReadOnly }
func (a *signerAgent) RemoveAll() error                 { return errReadOnly }
func (a *signerAgent) Lock([]byte) error                { return errReadOnly }
func (a *signerAgent) Unlock([]byte) error              { return errReadOnly }
func (a *signerAgent) Extension(string, []byte) ([]byte, error) {
	return nil, agent.ErrExtensionUnsupported
}

// ServeAgent serves the signers as an ssh-agent on a Unix socket in dir
// (which only this user can enter; short, as a socket's path is limited to
// about 100 bytes) and returns its path, for SSH_AUTH_SOCK or OpenSSH's
// IdentityAgent, and a function that stops it. ctx carries the build's
// panic handler (panics.Go).
func ServeAgent(ctx context.Context, dir string, signers []gossh.Signer) (string, func(), error) {
	sock := filepath.Join(dir, "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		return "", nil, err
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		l.Close()
		return "", nil, err
	}
	a := &signerAgent{signers: signers}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	panics.Go(ctx, func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			panics.Go(ctx, func() {
				defer wg.Done()
				_ = agent.ServeAgent(a, c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			})
		}
	})
	stop := func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
	return sock, stop, nil
}
