package ssh

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/imgbuild/imgbuild/engine/panics"
	"github.com/imgbuild/imgbuild/engine/retry"
)

// conn is one live connection (and the bastion's, when there is one).
type conn struct {
	client  *gossh.Client
	bastion *gossh.Client
	dead    chan struct{} // closed once the connection is gone
	// ctx carries the build's panic handler to the connection's goroutines
	// (panics.Go); it is never waited on.
	ctx context.Context

	mu     sync.Mutex
	reason error // why it died, when known
	sftp   *sftpClient
}

func newConn(ctx context.Context, client, bastion *gossh.Client, keepAlive time.Duration) *conn {
	c := &conn{client: client, bastion: bastion, dead: make(chan struct{}), ctx: context.WithoutCancel(ctx)}
	panics.Go(c.ctx, func() {
		err := client.Wait()
		c.setReason(err)
		if bastion != nil {
			bastion.Close()
		}
		close(c.dead)
	})
	if bastion != nil {
		panics.Go(c.ctx, func() {
			err := bastion.Wait()
			c.setReason(fmt.Errorf("the bastion's connection ended: %v", err))
			client.Close()
		})
	}
	if keepAlive > 0 {
		panics.Go(c.ctx, func() { c.keepAlive(client, keepAlive) })
		if bastion != nil {
			panics.Go(c.ctx, func() { c.keepAlive(bastion, keepAlive) })
		}
	}
	return c
}

func (c *conn) setReason(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason == nil && err != nil {
		c.reason = err
	}
}

// why says why the connection died.
func (c *conn) why() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason == nil {
		return errors.New("connection closed")
	}
	return c.reason
}

// keepAlive asks the server for a reply every interval and closes the
// connection when three intervals pass without one, so that a machine that
// vanished (rebooted, its network cut) is noticed rather than waited on.
func (c *conn) keepAlive(client *gossh.Client, interval time.Duration) {
	retry.Every(c.dead, interval, func() bool {
		reply := make(chan error, 1)
		panics.Go(c.ctx, func() {
			_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		})
		select {
		case err := <-reply:
			return err == nil // an error: the connection is gone; Wait reports it
		case <-time.After(3 * interval):
			c.setReason(fmt.Errorf("no answer to keepalives for %s", 3*interval))
			client.Close()
			return false
		case <-c.dead:
			return false
		}
	})
}

// alive reports whether the connection is still up.
func (c *conn) alive() bool {
	select {
	case <-c.dead:
		return false
	default:
		return true
	}
}

// answers reports whether the server still answers requests on the
// connection, waiting up to d for a reply. After a command or transfer ended
// abnormally it tells a lost connection (no answer: the transport fails at
// once, or within d) from an error of the command's own.
func (c *conn) answers(d time.Duration) bool {
	reply := make(chan error, 1)
	panics.Go(c.ctx, func() {
		_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
		reply <- err
	})
	select {
	case err := <-reply:
		return err == nil
	case <-c.dead:
		return false
	case <-time.After(d):
		// A slow server is not a lost one: only the keepalives decide that.
		return c.alive()
	}
}

// diedWithin reports whether the connection is, or within d turns out to
// be, gone: after a command ended abnormally the transport may need a
// moment to notice.
func (c *conn) diedWithin(d time.Duration) bool {
	select {
	case <-c.dead:
		return true
	case <-time.After(d):
		return false
	}
}

func (c *conn) close() {
	c.mu.Lock()
	s := c.sftp
	c.sftp = nil
	c.mu.Unlock()
	if s != nil {
		s.Close()
	}
	c.client.Close()
	if c.bastion != nil {
		c.bastion.Close()
	}
}
