package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/retry"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// Config is what Connect needs: the user's options and what the driver
// learned by itself.
type Config struct {
	// Options are the user's ssh_* keywords. A driver that learned the
	// machine's address sets Options.Host (and Port) itself.
	Options Options
	// HostKey is the machine's host key as the driver learned it out of
	// band (from an instance's console output, or because it generated it).
	// It is used when the user pinned none (ssh_host_key, ssh_known_hosts)
	// and did not turn verification off.
	HostKey gossh.PublicKey
	// Key is the build's own key pair (NewKey) whose public half the driver
	// installed on the machine. It is offered before the user's credentials.
	Key *Key
	// UI receives what the communicator has to say: waiting for the
	// machine, connected, the warning when host keys are not verified,
	// reconnecting. It may be nil.
	UI *event.UI
}

// Connect connects to the machine and returns a Communicator for it. It
// waits for the machine: while nothing answers it retries with backoff until
// ssh_timeout, and when the server answers but the handshake or login fails
// it tries ssh_handshake_attempts times. It fails at once for what waiting
// cannot fix: a key file it cannot read, a host key that does not match.
//
// The Communicator reconnects by itself after a lost connection; Close it
// when the build is done with the machine.
func Connect(ctx context.Context, cfg Config) (*Communicator, error) {
	d, err := newDialer(cfg)
	if err != nil {
		return nil, err
	}
	cfg.UI.Say("connecting to %s", d.opts.String())
	start := time.Now()
	cn, err := d.dial(ctx)
	if err != nil {
		return nil, err
	}
	cfg.UI.Say("connected to %s (%s) in %s", d.opts.String(), cn.client.ServerVersion(), time.Since(start).Round(time.Millisecond))
	cfg.UI.SetAccess(access(cfg))
	return &Communicator{d: d, cur: cn, sessions: make(chan struct{}, maxCommands)}, nil
}

// access says how a person logs in as the build does (--debug).
func access(cfg Config) *event.Access {
	o := cfg.Options
	a := &event.Access{User: o.Username, Host: o.Host, Port: o.Port, KeyFile: o.PrivateKeyFile}
	if cfg.Key != nil {
		a.Key = cfg.Key.PEM()
	}
	if o.BastionHost != "" {
		a.Jump = o.bastionUser() + "@" + net.JoinHostPort(o.BastionHost, strconv.Itoa(o.BastionPort))
	}
	return a
}

// dialer makes connections to one machine; it is set up once per Connect.
type dialer struct {
	opts    Options
	addr    string
	verify  *verifier
	creds   *credentials
	bastion *hop // nil without a bastion
	ui      *event.UI
	warned  sync.Once

	keysMu sync.Mutex
	keys   map[string]gossh.PublicKey // host keys accepted, by address
}

// accepted records the host key addr presented and the verifier accepted.
func (d *dialer) accepted(addr string, key gossh.PublicKey) {
	d.keysMu.Lock()
	defer d.keysMu.Unlock()
	if d.keys == nil {
		d.keys = map[string]gossh.PublicKey{}
	}
	d.keys[addr] = key
}

// acceptedKey returns the host key addr last presented and had accepted.
func (d *dialer) acceptedKey(addr string) gossh.PublicKey {
	d.keysMu.Lock()
	defer d.keysMu.Unlock()
	return d.keys[addr]
}

// hop is the bastion: where it is and how to log in to it.
type hop struct {
	addr   string
	verify *verifier
	creds  *credentials
}

func newDialer(cfg Config) (*dialer, error) {
	o := cfg.Options
	if err := o.Validate(nil, Require{Host: true}); err != nil {
		var fe *schema.FieldError
		if errors.As(err, &fe) {
			return nil, fmt.Errorf("%s %s", fe.Keyword, fe.Msg)
		}
		return nil, err
	}
	d := &dialer{opts: o, addr: o.Addr(), ui: cfg.UI}
	var err error
	if d.verify, err = hostKeyVerifier(&o, cfg.HostKey); err != nil {
		return nil, err
	}
	if d.creds, err = loadCredentials(&o, cfg.Key); err != nil {
		return nil, err
	}
	if o.BastionHost != "" {
		h := &hop{addr: net.JoinHostPort(o.BastionHost, strconv.Itoa(o.BastionPort))}
		if h.verify, err = bastionVerifier(&o, h.addr); err != nil {
			return nil, err
		}
		if h.creds, err = bastionCredentials(&o, cfg.Key); err != nil {
			return nil, err
		}
		d.bastion = h
	}
	return d, nil
}

// failure kinds of one connection attempt.
const (
	failDial      = iota // nothing answered: retry until ssh_timeout
	failHandshake        // it answered, but the handshake or login failed
	failFatal            // waiting will not help
)

type attemptError struct {
	kind    int
	bastion bool // it was the bastion that failed
	err     error
}

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

// dial connects, retrying as Connect describes.
func (d *dialer) dial(ctx context.Context) (*conn, error) {
	timeout := d.opts.Timeout
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	failures := 0
	lastSaid := time.Time{}
	var last *attemptError
	var cn *conn
	var final error // why to stop trying
	stop := func(err error) error {
		final = err
		return retry.Permanent(err)
	}
	err := retry.Do(dctx, retry.Backoff{First: 200 * time.Millisecond, Max: 5 * time.Second, Factor: 2}, 0,
		func(_ int, err error, _ time.Duration) {
			if time.Since(lastSaid) > 30*time.Second {
				d.ui.Say("waiting for SSH on %s: %v", d.opts.String(), err)
				lastSaid = time.Now()
			}
		},
		func(dctx context.Context, _ int) error {
			c, err := d.attempt(dctx)
			if err == nil {
				cn = c
				return nil
			}
			if ctx.Err() != nil {
				return stop(fmt.Errorf("connecting to %s: %w", d.opts.String(), context.Cause(ctx)))
			}
			var ae *attemptError
			if !errors.As(err, &ae) {
				ae = &attemptError{kind: failDial, err: err}
			}
			if ae.kind == failFatal {
				return stop(ae.err)
			}
			// An attempt cut short by ssh_timeout says less than the one
			// before it ("context deadline exceeded").
			timedOut := dctx.Err() != nil
			if !timedOut || last == nil {
				last = ae
			}
			if timedOut {
				return stop(d.timeoutError(last))
			}
			if ae.kind == failHandshake {
				failures++
				if failures >= d.opts.HandshakeAttempts {
					return stop(d.loginError(ae, failures))
				}
			}
			return ae.err
		})
	switch {
	case err == nil:
		return cn, nil
	case final != nil:
		return nil, final
	case ctx.Err() != nil:
		return nil, fmt.Errorf("connecting to %s: %w", d.opts.String(), context.Cause(ctx))
	}
	// ssh_timeout ran out during a wait.
	return nil, d.timeoutError(last)
}

func (d *dialer) timeoutError(last *attemptError) error {
	if last.kind == failHandshake {
		return fmt.Errorf("the SSH server at %s answered but did not let us in within %s: %v", d.where(last), d.opts.Timeout, last.err)
	}
	hint := "check ssh_host/ssh_port and that the machine booted"
	if last.bastion {
		hint = "check ssh_bastion_host/ssh_bastion_port"
	} else if d.bastion != nil {
		hint = "check ssh_host/ssh_port as the bastion sees them, and that the machine booted"
	}
	return fmt.Errorf("no SSH server answered at %s within %s: %v; %s", d.where(last), d.opts.Timeout, last.err, hint)
}

func (d *dialer) loginError(last *attemptError, attempts int) error {
	tries := "1 attempt"
	if attempts > 1 {
		tries = fmt.Sprintf("%d attempts", attempts)
	}
	creds, userKw, keyHint := d.creds, "ssh_username", "the machine's authorized_keys"
	if last.bastion {
		creds, userKw, keyHint = d.bastion.creds, "ssh_bastion_username", "the bastion's authorized_keys"
	}
	if isAuthError(last.err) {
		return fmt.Errorf("the SSH server at %s refused to let %q in (offered %s) after %s: %v; check %s and that %s holds the key",
			d.where(last), creds.user, creds.describe(), tries, last.err, userKw, keyHint)
	}
	return fmt.Errorf("SSH handshake with %s failed after %s: %v", d.where(last), tries, last.err)
}

func (d *dialer) where(e *attemptError) string {
	switch {
	case e.bastion:
		return "bastion " + d.bastion.addr
	case d.bastion != nil:
		return d.addr + " (through bastion " + d.bastion.addr + ")"
	}
	return d.addr
}

func isAuthError(err error) bool {
	return err != nil && strings.Contains(err.Error(), "unable to authenticate")
}

// attempt makes one connection, through the bastion if there is one.
func (d *dialer) attempt(ctx context.Context) (*conn, error) {
	var bastion *gossh.Client
	dialTarget := func(ctx context.Context) (net.Conn, error) {
		return dialTCP(ctx, d.addr)
	}
	if d.bastion != nil {
		var err error
		bastion, err = d.handshake(ctx, d.bastion.addr, d.bastion.verify, d.bastion.creds, func(ctx context.Context) (net.Conn, error) {
			return dialTCP(ctx, d.bastion.addr)
		})
		if err != nil {
			var ae *attemptError
			if errors.As(err, &ae) {
				ae.bastion = true
			}
			return nil, err
		}
		dialTarget = func(ctx context.Context) (net.Conn, error) {
			c, err := bastion.DialContext(ctx, "tcp", d.addr)
			if err != nil {
				return nil, fmt.Errorf("the bastion could not reach %s: %w", d.addr, err)
			}
			return c, nil
		}
	}
	client, err := d.handshake(ctx, d.addr, d.verify, d.creds, dialTarget)
	if err != nil {
		if bastion != nil {
			bastion.Close()
		}
		return nil, err
	}
	return newConn(ctx, client, bastion, d.opts.KeepAliveInterval), nil
}

// dialTCP opens a TCP connection, batched (see batchedConn).
func dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return newBatchedConn(ctx, c), nil
}

// handshake dials addr and logs in. When the host key algorithms to ask for
// come in several sets (a pinned fingerprint of unknown kind), a key that
// does not match makes it try the next set on a fresh connection.
func (d *dialer) handshake(ctx context.Context, addr string, v *verifier, creds *credentials, dial func(context.Context) (net.Conn, error)) (*gossh.Client, error) {
	sets := v.algorithmSets
	if len(sets) == 0 {
		sets = [][]string{nil}
	}
	var mismatch *HostKeyError
	var lastErr error
	for _, algs := range sets {
		client, err := d.handshakeOnce(ctx, addr, v, creds, algs, dial)
		if err == nil {
			return client, nil
		}
		var he *HostKeyError
		var ne *gossh.AlgorithmNegotiationError
		switch {
		case errors.As(err, &he):
			if mismatch == nil {
				mismatch = he
			} else {
				mismatch.Presented = append(mismatch.Presented, he.Presented...)
			}
			continue
		case errors.As(err, &ne) && len(sets) > 1:
			lastErr = err
			continue // the server has no key of this kind
		}
		return nil, err
	}
	if mismatch != nil {
		return nil, &attemptError{kind: failFatal, err: mismatch}
	}
	return nil, &attemptError{kind: failFatal, err: fmt.Errorf("%s offers no host key of the pinned kind: %v", addr, lastErr)}
}

// handshakeTimeout bounds one handshake, so that a server that accepts
// connections but never speaks does not eat all of ssh_timeout at once.
const handshakeTimeout = 30 * time.Second

func (d *dialer) handshakeOnce(ctx context.Context, addr string, v *verifier, creds *credentials, algs []string, dial func(context.Context) (net.Conn, error)) (*gossh.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	raw, err := dial(dctx)
	if err != nil {
		return nil, &attemptError{kind: failDial, err: err}
	}
	methods, done, err := creds.methods()
	if err != nil {
		raw.Close()
		return nil, &attemptError{kind: failFatal, err: err}
	}
	defer done()
	cfg := &gossh.ClientConfig{
		User:              creds.user,
		Auth:              methods,
		HostKeyAlgorithms: algs,
		HostKeyCallback: func(hostname string, remote net.Addr, key gossh.PublicKey) error {
			if err := v.callback(hostname, remote, key); err != nil {
				return err
			}
			d.accepted(addr, key)
			if v.insecure {
				d.warned.Do(func() {
					d.ui.Warn("ssh_insecure_ignore_host_key = True: not verifying the host key of %s (it presented %s); anyone on the network path could impersonate it", hostname, describeKey(key))
				})
			}
			return nil
		},
	}
	// Closing the connection is the only way to interrupt a handshake.
	stop := context.AfterFunc(dctx, func() { raw.Close() })
	c, chans, reqs, err := gossh.NewClientConn(raw, addr, cfg)
	if !stop() {
		if err == nil {
			c.Close()
		}
		raw.Close()
		if ctx.Err() != nil {
			return nil, &attemptError{kind: failDial, err: errors.New("a TCP connection was accepted, but the SSH handshake did not finish")}
		}
		return nil, &attemptError{kind: failHandshake, err: fmt.Errorf("no SSH handshake within %s", handshakeTimeout)}
	}
	if err != nil {
		raw.Close()
		var he *HostKeyError
		if errors.As(err, &he) {
			return nil, he
		}
		return nil, &attemptError{kind: failHandshake, err: err}
	}
	return gossh.NewClient(c, chans, reqs), nil
}
