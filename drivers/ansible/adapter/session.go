package adapter

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/panics"
)

// session serves one session channel: one exec or one sftp subsystem, and
// the requests around it (pty-req and window-change are acknowledged and
// ignored: the command gets pipes, not a terminal).
func (a *Adapter) session(ch gossh.Channel, reqs <-chan *gossh.Request) {
	defer ch.Close()
	ctx, cancel := context.WithCancel(a.ctx)
	defer cancel()
	var done chan uint32
	for {
		select {
		case req, ok := <-reqs:
			if !ok {
				// The client closed the channel: stop what runs.
				cancel()
				if done != nil {
					<-done
				}
				return
			}
			switch req.Type {
			case "exec", "subsystem":
				var payload struct{ Value string }
				if done != nil || gossh.Unmarshal(req.Payload, &payload) != nil {
					_ = req.Reply(false, nil)
					continue
				}
				if req.Type == "subsystem" && payload.Value != "sftp" {
					_ = req.Reply(false, nil)
					continue
				}
				_ = req.Reply(true, nil)
				done = make(chan uint32, 1)
				what, value := req.Type, payload.Value
				panics.Go(ctx, func() {
					if what == "subsystem" {
						done <- a.sftp(ctx, ch)
						return
					}
					done <- a.exec(ctx, ch, value)
				})
			case "pty-req", "window-change":
				_ = req.Reply(true, nil)
			case "signal":
				// Any signal stops the command: the communicator's
				// cancellation terminates its whole process group.
				cancel()
			default:
				// shell, env, x11-req, auth-agent-req@openssh.com and the
				// rest: refused.
				_ = req.Reply(false, nil)
			}
		case status := <-done:
			_ = ch.CloseWrite()
			_, _ = ch.SendRequest("exit-status", false, gossh.Marshal(struct{ Status uint32 }{status}))
			return
		}
	}
}

// exec runs one command line on the machine (or speaks SCP for "scp -t"
// and "scp -f") and returns its exit status; 255 when it could not be run,
// as ssh reports a connection failure.
func (a *Adapter) exec(ctx context.Context, ch gossh.Channel, command string) uint32 {
	if s, ok := parseSCP(command); ok {
		return a.scp(ctx, ch, s)
	}
	a.commands.Add(1)
	// The command's input is a pipe fed from the channel: an *os.File is
	// handed to a local process as is, so the communicator does not wait
	// for the client to close its input (ssh -tt never does) once the
	// command has ended.
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "imgbuild adapter: %v\n", err)
		return 255
	}
	panics.Go(ctx, func() {
		_, _ = io.Copy(stdinW, ch)
		stdinW.Close()
	})
	status, err := a.opts.Comm.Run(ctx, &engine.Command{Command: command, Stdin: stdinR, Stdout: ch, Stderr: ch.Stderr()})
	stdinR.Close()
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "imgbuild adapter: %v\n", err)
		return 255
	}
	if status < 0 {
		return 255
	}
	return uint32(status)
}

// sftp serves the SFTP subsystem on ch until the client ends it.
func (a *Adapter) sftp(ctx context.Context, ch gossh.Channel) uint32 {
	h := &sftpHandlers{a: a, ctx: ctx}
	srv := sftp.NewRequestServer(ch, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h})
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(); err != nil && err != io.EOF && ctx.Err() == nil {
		a.warn("SFTP session ended: %v", err)
		return 1
	}
	return 0
}
