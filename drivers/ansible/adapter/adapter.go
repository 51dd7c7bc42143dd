package adapter

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/panics"
)

// Options configure an Adapter.
type Options struct {
	// Comm reaches the build's machine.
	Comm engine.Communicator
	// TempDir is a directory of this machine where files in transit are
	// staged; it must exist.
	TempDir string
	// UI receives what the adapter has to say: why a transfer failed
	// (the client only hears "Failure"). It may be nil.
	UI *event.UI
}

// Stats count what an Adapter carried.
type Stats struct {
	Connections, Commands, Uploads, Downloads, FileOps int64
}

// Adapter is a running SSH server for one build's machine.
type Adapter struct {
	opts   Options
	files  *machineFiles
	ln     net.Listener
	host   gossh.Signer
	client ed25519.PrivateKey
	config *gossh.ServerConfig

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool

	connections, commands, uploads, downloads, fileOps atomic.Int64
}

// Start listens on a free port of 127.0.0.1 and serves until Close or
// until ctx is done; the commands it runs get ctx too.
func Start(ctx context.Context, opts Options) (*Adapter, error) {
	if opts.Comm == nil {
		return nil, errors.New("adapter: no communicator")
	}
	if fi, err := os.Stat(opts.TempDir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("adapter: TempDir %q is not a directory", opts.TempDir)
	}
	files, err := newMachineFiles(opts.Comm, opts.TempDir)
	if err != nil {
		return nil, err
	}
	_, hostKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("adapter: making a host key: %w", err)
	}
	host, err := gossh.NewSignerFromKey(hostKey)
	if err != nil {
		return nil, err
	}
	clientPub, client, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("adapter: making a client key: %w", err)
	}
	want, err := gossh.NewPublicKey(clientPub)
	if err != nil {
		return nil, err
	}
	cfg := &gossh.ServerConfig{
		ServerVersion: "SSH-2.0-imgbuild-adapter",
		PublicKeyCallback: func(meta gossh.ConnMetadata, key gossh.PublicKey) (*gossh.Permissions, error) {
			if bytes.Equal(key.Marshal(), want.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("only the key made for this run is accepted")
		},
	}
	cfg.AddHostKey(host)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("adapter: listening on 127.0.0.1: %w", err)
	}
	a := &Adapter{opts: opts, files: files, ln: ln, host: host, client: client, config: cfg, conns: map[net.Conn]bool{}}
	a.ctx, a.cancel = context.WithCancel(ctx)
	a.wg.Add(1)
	panics.Go(a.ctx, a.accept)
	context.AfterFunc(a.ctx, func() { a.Close() })
	return a, nil
}

// Host is the address the adapter listens on, "127.0.0.1".
func (a *Adapter) Host() string { return a.ln.Addr().(*net.TCPAddr).IP.String() }

// Port is the port it listens on.
func (a *Adapter) Port() int { return a.ln.Addr().(*net.TCPAddr).Port }

// HostKey is the adapter's host key, made for this Start.
func (a *Adapter) HostKey() gossh.PublicKey { return a.host.PublicKey() }

// KnownHostsLine is a known_hosts line naming the adapter's address and
// host key, for the client to verify it with.
func (a *Adapter) KnownHostsLine() string {
	addr := net.JoinHostPort(a.Host(), strconv.Itoa(a.Port()))
	return knownhosts.Line([]string{knownhosts.Normalize(addr)}, a.HostKey())
}

// ClientKeyPEM is the private key the adapter accepts, in OpenSSH PEM form,
// for the client's key file (mode 0600). It is good for this Start only.
func (a *Adapter) ClientKeyPEM() []byte {
	block, err := gossh.MarshalPrivateKey(a.client, "imgbuild adapter")
	if err != nil {
		panic("adapter: marshalling an ed25519 key: " + err.Error())
	}
	return pem.EncodeToMemory(block)
}

// Stats returns what the adapter carried so far.
func (a *Adapter) Stats() Stats {
	return Stats{
		Connections: a.connections.Load(), Commands: a.commands.Load(),
		Uploads: a.uploads.Load(), Downloads: a.downloads.Load(), FileOps: a.fileOps.Load(),
	}
}

// Close stops listening, cancels the commands still running, closes every
// connection and waits for their handlers to end.
func (a *Adapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.cancel()
	err := a.ln.Close()
	for c := range a.conns {
		c.Close()
	}
	a.mu.Unlock()
	a.wg.Wait()
	return err
}

func (a *Adapter) accept() {
	defer a.wg.Done()
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			c.Close()
			return
		}
		a.conns[c] = true
		a.wg.Add(1)
		a.mu.Unlock()
		panics.Go(a.ctx, func() { a.serve(c) })
	}
}

// serve runs one client connection.
func (a *Adapter) serve(c net.Conn) {
	defer a.wg.Done()
	defer func() {
		c.Close()
		a.mu.Lock()
		delete(a.conns, c)
		a.mu.Unlock()
	}()
	sc, chans, reqs, err := gossh.NewServerConn(c, a.config)
	if err != nil {
		return // a failed login or a dropped handshake: nothing to serve
	}
	defer sc.Close()
	a.connections.Add(1)
	panics.Go(a.ctx, func() { gossh.DiscardRequests(reqs) })
	var sessions sync.WaitGroup
	defer sessions.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(gossh.UnknownChannelType, "the imgbuild adapter serves sessions only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		sessions.Add(1)
		panics.Go(a.ctx, func() {
			defer sessions.Done()
			a.session(ch, creqs)
		})
	}
}

// warn tells the user what the client will only hear as a failure.
func (a *Adapter) warn(format string, args ...any) {
	a.opts.UI.Warn("ansible adapter: "+format, args...)
}
