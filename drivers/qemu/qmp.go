package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/imgbuild/imgbuild/drivers/bootcmd"
)

// qmpClient speaks QEMU's machine protocol (QMP) on the Unix socket a
// machine serves it on: enough to type keys with send-key.
type qmpClient struct {
	conn net.Conn
	r    *bufio.Reader
}

// dialQMP connects to the socket (QEMU makes it as it starts: it is tried
// until wait is over) and leaves the greeting's capabilities negotiation
// done.
func dialQMP(ctx context.Context, socket string, wait time.Duration) (*qmpClient, error) {
	deadline := time.Now().Add(wait)
	var conn net.Conn
	var err error
	for {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "unix", socket)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to QEMU's QMP socket %s: %w", socket, err)
	}
	q := &qmpClient{conn: conn, r: bufio.NewReader(conn)}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var greeting struct {
		QMP json.RawMessage `json:"QMP"`
	}
	if err := q.read(&greeting); err != nil || greeting.QMP == nil {
		conn.Close()
		return nil, fmt.Errorf("QEMU's QMP socket %s sent no greeting: %v", socket, err)
	}
	if err := q.execute("qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

// read reads the next reply or event line into v.
func (q *qmpClient) read(v any) error {
	line, err := q.r.ReadBytes('\n')
	if err != nil {
		return err
	}
	return json.Unmarshal(line, v)
}

// execute runs a command and waits for its reply, skipping events.
func (q *qmpClient) execute(cmd string, args any) error {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	data, _ := json.Marshal(req)
	if _, err := q.conn.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("QMP %s: %w", cmd, err)
	}
	for {
		var reply struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class, Desc string
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := q.read(&reply); err != nil {
			return fmt.Errorf("QMP %s: %w", cmd, err)
		}
		switch {
		case reply.Error != nil:
			return fmt.Errorf("QMP %s: %s (%s)", cmd, reply.Error.Desc, reply.Error.Class)
		case reply.Event != "":
			continue
		}
		return nil
	}
}

func (q *qmpClient) Close() error { return q.conn.Close() }

// qmpKeyboard types on a machine's keyboard with QMP's send-key: each
// press sends the held modifiers and the key, which QEMU presses in order
// and releases after holdTime.
type qmpKeyboard struct {
	q        *qmpClient
	holdTime time.Duration
}

type qmpKey struct {
	Type string `json:"type"`
	Data string `json:"data"`
}

// Press implements bootcmd.Keyboard.
func (k *qmpKeyboard) Press(ctx context.Context, keys []bootcmd.Press) error {
	stop := context.AfterFunc(ctx, func() { k.q.conn.Close() })
	defer stop()
	k.q.conn.SetDeadline(time.Now().Add(30 * time.Second))
	for _, p := range keys {
		code, ok := qcodes[p.Key]
		if !ok {
			return fmt.Errorf("<%s> has no QEMU key code", p.Key.Name())
		}
		var ks []qmpKey
		for _, m := range p.Modifiers.List() {
			ks = append(ks, qmpKey{"qcode", modifierQcodes[m]})
		}
		ks = append(ks, qmpKey{"qcode", code})
		err := k.q.execute("send-key", map[string]any{"keys": ks, "hold-time": k.holdTime.Milliseconds()})
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return fmt.Errorf("typing on the machine's keyboard: %w", err)
		}
	}
	return nil
}
