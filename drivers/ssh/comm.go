package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/panics"
)

// Communicator runs commands on one machine over SSH and moves files over
// SFTP. It implements engine.Communicator. It is safe for concurrent use;
// after a lost connection the next call reconnects, waiting for the machine
// as Connect does.
type Communicator struct {
	d *dialer
	// sessions bounds the commands running at once: OpenSSH allows 10
	// sessions per connection (MaxSessions), one of which is SFTP's and one
	// kept for killing a cancelled command.
	sessions chan struct{}

	mu     sync.Mutex
	cur    *conn
	closed bool
}

var _ engine.Communicator = (*Communicator)(nil)

// String names where the communicator connects: "root@10.0.0.5:22".
func (c *Communicator) String() string { return c.d.opts.String() }

// Close closes the connection. Later calls fail.
func (c *Communicator) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.cur != nil {
		c.cur.close()
		c.cur = nil
	}
	return nil
}

// maxCommands is how many commands one Communicator runs at once.
const maxCommands = 8

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("ssh: communicator is closed")

// conn returns the live connection, reconnecting if the last one died.
func (c *Communicator) conn(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.cur != nil && c.cur.alive() {
		return c.cur, nil
	}
	if c.cur != nil {
		c.d.ui.Say("reconnecting to %s (the connection was lost: %v)", c.d.opts.String(), c.cur.why())
		c.cur.close()
		c.cur = nil
	}
	cn, err := c.d.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.d.ui.Say("reconnected to %s", c.d.opts.String())
	c.cur = cn
	return cn, nil
}

// session opens a session, reconnecting once if the connection turns out to
// have died since the last call.
func (c *Communicator) session(ctx context.Context) (*conn, *gossh.Session, error) {
	for try := 0; ; try++ {
		cn, err := c.conn(ctx)
		if err != nil {
			return nil, nil, err
		}
		s, err := cn.client.NewSession()
		if err == nil {
			return cn, s, nil
		}
		if try == 0 && cn.diedWithin(time.Second) {
			continue
		}
		return nil, nil, c.lost(cn, fmt.Errorf("opening a session: %w", err))
	}
}

// lost turns err into an error wrapping engine.ErrDisconnected when the
// connection is gone; otherwise it returns err.
func (c *Communicator) lost(cn *conn, err error) error {
	if cn.alive() && cn.answers(2*time.Second) {
		return err
	}
	return &disconnectedError{where: c.d.opts.String(), cause: cn.why(), op: err}
}

// disconnectedError is a lost connection: it wraps engine.ErrDisconnected.
type disconnectedError struct {
	where string
	cause error // why the connection died
	op    error // what failed because of it
}

func (e *disconnectedError) Error() string {
	return fmt.Sprintf("%v (%s: %v; %v)", engine.ErrDisconnected, e.where, e.cause, e.op)
}

func (e *disconnectedError) Unwrap() []error { return []error{engine.ErrDisconnected, e.op} }

// Run runs cmd.Command through the login shell of the SSH user and returns
// its exit status (128+n when signal n killed it). Output is streamed to
// cmd.Stdout and cmd.Stderr as it arrives. cmd.Stdin, if set, is copied to
// the command until it returns EOF: Run returns only after that, so it
// must not block forever.
//
// Cancelling ctx kills the command: the session is sent SIGTERM, the
// command's whole process group (sshd makes each command a process group
// leader) gets SIGTERM then SIGKILL through a second session, and the
// session is closed. Run then returns ctx's cause. A command running as
// another user (through sudo) cannot be killed that way; closing the session
// still closes its input and output.
func (c *Communicator) Run(ctx context.Context, cmd *engine.Command) (int, error) {
	if err := ctx.Err(); err != nil {
		return -1, context.Cause(ctx)
	}
	select {
	case c.sessions <- struct{}{}:
		defer func() { <-c.sessions }()
	case <-ctx.Done():
		return -1, context.Cause(ctx)
	}
	cn, s, err := c.session(ctx)
	if err != nil {
		return -1, err
	}
	defer s.Close()

	pid := newPIDSniffer(cmd.Stdout)
	s.Stdin = cmd.Stdin
	s.Stdout = pid
	s.Stderr = cmd.Stderr
	if err := s.Start(pid.prefix + cmd.Command); err != nil {
		return -1, c.lost(cn, fmt.Errorf("starting the command: %w", err))
	}
	waited := make(chan error, 1)
	panics.Go(ctx, func() { waited <- s.Wait() })

	var werr error
	select {
	case werr = <-waited:
	case <-ctx.Done():
		select {
		case werr = <-waited: // it ended anyway
		default:
			c.kill(ctx, cn, s, pid)
			return -1, fmt.Errorf("command cancelled: %w", context.Cause(ctx))
		}
	}
	pid.flush()

	var exit *gossh.ExitError
	var missing *gossh.ExitMissingError
	switch {
	case werr == nil:
		return 0, nil
	case errors.As(werr, &exit):
		return exit.ExitStatus(), nil
	case errors.As(werr, &missing):
		return -1, c.lost(cn, errors.New("the command ended without an exit status"))
	}
	return -1, c.lost(cn, werr)
}

// kill stops a cancelled command: a signal on its session, then its process
// group through a second session, since OpenSSH may ignore signal requests
// and closing the session alone does not stop a command that neither reads
// nor writes.
func (c *Communicator) kill(ctx context.Context, cn *conn, s *gossh.Session, pid *pidSniffer) {
	_ = s.Signal(gossh.SIGTERM)
	if p := pid.wait(2 * time.Second); p > 0 && cn.alive() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if ks, err := cn.client.NewSession(); err == nil {
			done := make(chan struct{})
			panics.Go(ctx, func() {
				_ = ks.Run(killGroup(p))
				close(done)
			})
			select {
			case <-done:
			case <-ctx.Done():
			}
			ks.Close()
		}
	}
	s.Close()
}

// killGroup is a shell command that sends SIGTERM to process group pgid,
// waits up to two seconds for it to go, then sends SIGKILL.
func killGroup(pgid int) string {
	g := strconv.Itoa(pgid)
	return "kill -s TERM -- -" + g + " 2>/dev/null || exit 0; " +
		"i=0; while [ $i -lt 20 ] && kill -s 0 -- -" + g + " 2>/dev/null; do sleep 0.1; i=$((i+1)); done; " +
		"kill -s KILL -- -" + g + " 2>/dev/null; exit 0"
}

// pidSniffer passes a command's stdout through, minus the line the command
// prefix writes first: the process id of the shell running the command
// (which sshd made a process group leader), so that a cancelled command's
// process group can be killed. Lines a login script may print before it are
// passed through.
type pidSniffer struct {
	w      io.Writer
	prefix string // put before the command
	marker []byte // the line it writes, up to the pid

	mu      sync.Mutex
	buf     []byte
	done    bool // found, or given up
	scanned int
	pid     int
	found   chan struct{}
}

// markerLimit bounds how much output is searched for the marker.
const markerLimit = 64 << 10

func newPIDSniffer(w io.Writer) *pidSniffer {
	if w == nil {
		w = io.Discard
	}
	nonce := make([]byte, 6)
	_, _ = rand.Read(nonce)
	tag := "imgbuild-pid-" + hex.EncodeToString(nonce)
	return &pidSniffer{
		w:      w,
		prefix: "echo " + tag + " $$; ",
		marker: []byte(tag + " "),
		found:  make(chan struct{}),
	}
}

// Write implements io.Writer.
func (p *pidSniffer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return p.passOn(b, len(b))
	}
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			if p.scanned+len(p.buf) > markerLimit {
				p.giveUp()
				return p.passOn(p.takeBuf(), len(b))
			}
			return len(b), nil
		}
		line := p.buf[:i]
		if rest, ok := bytes.CutPrefix(line, p.marker); ok {
			if n, err := strconv.Atoi(string(rest)); err == nil {
				p.pid = n
			}
			p.giveUp()
			p.buf = p.buf[i+1:]
			return p.passOn(p.takeBuf(), len(b))
		}
		// A line before the marker (a login script's): pass it on.
		p.scanned += i + 1
		if _, err := p.w.Write(p.buf[:i+1]); err != nil {
			return 0, err
		}
		p.buf = p.buf[i+1:]
	}
}

func (p *pidSniffer) passOn(b []byte, n int) (int, error) {
	if len(b) == 0 {
		return n, nil
	}
	if _, err := p.w.Write(b); err != nil {
		return 0, err
	}
	return n, nil
}

func (p *pidSniffer) takeBuf() []byte {
	b := p.buf
	p.buf = nil
	return b
}

func (p *pidSniffer) giveUp() {
	if !p.done {
		p.done = true
		close(p.found)
	}
}

// flush passes on what is held back, once the command ended.
func (p *pidSniffer) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.giveUp()
	if b := p.takeBuf(); len(b) > 0 {
		_, _ = p.w.Write(b)
	}
}

// wait returns the command's pid, or 0 if it is not known within d.
func (p *pidSniffer) wait(d time.Duration) int {
	select {
	case <-p.found:
	case <-time.After(d):
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}
