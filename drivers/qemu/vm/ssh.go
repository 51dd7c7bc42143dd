package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/imgbuild/imgbuild/engine/retry"
)

// WaitForHostKey waits until deadline for an SSH server to answer on addr
// (a port QEMU forwards to the machine, for this machine alone) and
// returns its host key, learnt on that first contact. still is called
// every 30 seconds of waiting with the last attempt's error. At the
// deadline the error is the last attempt's; when ctx ends, ctx's cause.
func WaitForHostKey(ctx context.Context, addr, user string, deadline time.Time, still func(waited time.Duration, last error)) (gossh.PublicKey, error) {
	start := time.Now()
	lastSaid := start
	// A short wait for the banner while the machine boots, longer when it
	// keeps timing out (a slow machine that does answer).
	wait, timeouts := 2*time.Second, 0
	for {
		k, err := probeHostKey(ctx, addr, user, wait)
		if err == nil {
			return k, nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if timeouts++; timeouts%5 == 0 && wait < 16*time.Second {
				wait *= 2
			}
			err = fmt.Errorf("no SSH banner within %s", wait)
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		if time.Since(lastSaid) > 30*time.Second {
			still(time.Since(start), err)
			lastSaid = time.Now()
		}
		if err := retry.Sleep(ctx, 500*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// errGotKey ends a probe's handshake once the host key is known.
var errGotKey = errors.New("host key received")

// probeHostKey connects to addr and starts an SSH handshake only to learn
// the server's host key.
//
// QEMU accepts the connection at once and only then tries the guest, which
// does not answer at all while it boots: the probe gives up after wait and
// tries again.
func probeHostKey(ctx context.Context, addr, user string, wait time.Duration) (gossh.PublicKey, error) {
	d := net.Dialer{Timeout: 3 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var key gossh.PublicKey
	_, _, _, err = gossh.NewClientConn(conn, addr, &gossh.ClientConfig{
		User: user,
		HostKeyCallback: func(_ string, _ net.Addr, k gossh.PublicKey) error {
			key = k
			return errGotKey
		},
	})
	if key != nil {
		return key, nil
	}
	if err == nil {
		err = errors.New("the handshake ended without a host key")
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "EOF") {
		err = fmt.Errorf("nothing answers on the machine's port yet (%v)", err)
	}
	return nil, err
}
