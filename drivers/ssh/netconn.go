package ssh

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"

	"github.com/imgbuild/imgbuild/engine/panics"
)

// batchedConn cuts the system calls x/crypto/ssh makes on a TCP
// connection, which bound bulk transfers on virtual machines where a system
// call is dear. x/crypto writes and flushes every SSH packet (at most 32 KiB)
// on its own; here writes go to a buffer that one goroutine sends in as few
// writes as it can: an idle connection sends a packet at once, a busy one
// sends what piled up while the last write was in flight. Reads are served
// from a large buffer, so that one system call takes in many packets.
type batchedConn struct {
	net.Conn
	r *bufio.Reader

	mu      sync.Mutex
	cond    *sync.Cond
	pending []byte // waiting to be sent
	spare   []byte // the buffer being sent, reused
	err     error  // the first write error; later writes return it
	closed  bool
	idle    bool // the writer goroutine waits for data
	full    int  // writers waiting for room
}

// Every connection holds these buffers (the pending one twice, while it is
// sent), so they bound the memory of concurrent builds. At 30 concurrent
// SSH builds, 256 KiB and 1 MiB cost 1.86 MB of resident memory per build
// and these 0.67 MB; both moved 128 MiB as fast, measured interleaved
// (drivers/ssh/bench).
const (
	// batchReadSize is the read buffer: two full SSH packets a system call.
	batchReadSize = 64 << 10
	// batchMaxPending bounds what Write accepts before it waits for the
	// network: eight full SSH packets a system call.
	batchMaxPending = 256 << 10
)

// ctx carries the build's panic handler to the writer goroutine.
func newBatchedConn(ctx context.Context, c net.Conn) *batchedConn {
	b := &batchedConn{Conn: c, r: bufio.NewReaderSize(c, batchReadSize)}
	b.cond = sync.NewCond(&b.mu)
	panics.Go(ctx, b.writer)
	return b
}

// Read implements net.Conn.
func (b *batchedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// Write implements net.Conn. It returns once p is queued; an error sending
// it is returned by a later Write.
func (b *batchedConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) >= batchMaxPending && b.err == nil && !b.closed {
		b.full++
		b.cond.Wait()
		b.full--
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.closed {
		return 0, net.ErrClosed
	}
	b.pending = append(b.pending, p...)
	if b.idle {
		b.cond.Broadcast()
	}
	return len(p), nil
}

func (b *batchedConn) writer() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for len(b.pending) == 0 && !b.closed && b.err == nil {
			b.idle = true
			b.cond.Wait()
			b.idle = false
		}
		if b.err != nil || b.closed {
			return
		}
		out := b.pending
		b.pending = b.spare[:0]
		b.mu.Unlock()
		_, err := b.Conn.Write(out)
		b.mu.Lock()
		b.spare = out[:0]
		if err != nil {
			b.err = err
		}
		if b.full > 0 || err != nil {
			b.cond.Broadcast()
		}
	}
}

// Close closes the connection, dropping what is pending: nothing the SSH
// layer waits for is lost that way, since every exchange that matters
// (a command's exit status, a write's acknowledgement) ends with the server
// answering.
func (b *batchedConn) Close() error {
	b.mu.Lock()
	b.closed = true
	b.pending = nil
	b.cond.Broadcast()
	b.mu.Unlock()
	return b.Conn.Close()
}

// packetJoiner sits between pkg/sftp and the SFTP session's input. pkg/sftp
// writes each request as two writes, a header of a few dozen bytes then the
// data, and x/crypto sends each write as its own SSH packets: a 255 KiB
// upload request would go out as a tiny packet and eight data packets, all
// encrypted, sent and taken apart one by one. The joiner holds a header
// whose packet is incomplete and sends it with the start of the data, so the
// request fills eight full packets.
type packetJoiner struct {
	w      io.WriteCloser
	held   []byte
	packet int // the SSH channel's packet size
}

// maxHeader bounds what is held back: an SFTP request header (type, id,
// handle, offset, length) is far shorter.
const maxHeader = 1024

func (j *packetJoiner) Write(p []byte) (int, error) {
	if len(j.held) == 0 {
		if len(p) >= 5 && len(p) <= maxHeader && int(binary.BigEndian.Uint32(p))+4 > len(p) {
			j.held = append(j.held[:0], p...)
			return len(p), nil
		}
		return j.w.Write(p)
	}
	first := min(len(p), max(j.packet-len(j.held), 0))
	buf := append(j.held, p[:first]...)
	j.held = buf[:0]
	if _, err := j.w.Write(buf); err != nil {
		return 0, err
	}
	if first == len(p) {
		return len(p), nil
	}
	n, err := j.w.Write(p[first:])
	return first + n, err
}

func (j *packetJoiner) Close() error { return j.w.Close() }
