package provision

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// tailLines is how many lines of stderr a failed script's error quotes.
const tailLines = 5

// tail keeps the last lines written to it.
type tail struct {
	mu    sync.Mutex
	n     int
	lines []string
	part  []byte
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.part = append(t.part, p...)
			if len(t.part) > 4096 {
				t.part = t.part[len(t.part)-4096:]
			}
			break
		}
		t.part = append(t.part, p[:i]...)
		t.push(string(t.part))
		t.part = t.part[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (t *tail) push(line string) {
	line = strings.TrimRight(line, "\r")
	if len(line) > 300 {
		line = line[:300] + "…"
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > t.n {
		t.lines = t.lines[len(t.lines)-t.n:]
	}
}

// Lines returns the last lines, counting an unterminated last one.
func (t *tail) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.lines...)
	if len(t.part) > 0 {
		out = append(out, strings.TrimRight(string(t.part), "\r"))
	}
	if len(out) > t.n {
		out = out[len(out)-t.n:]
	}
	return out
}

// exitError is a script or command that ended with a status not in
// valid_exit_codes.
type exitError struct {
	What   string
	Status int
	Valid  []int
	Stderr []string
}

func (e *exitError) Error() string {
	valid := make([]string, len(e.Valid))
	for i, v := range e.Valid {
		valid[i] = strconv.Itoa(v)
	}
	msg := fmt.Sprintf("%s exited with status %d (valid: %s)", e.What, e.Status, strings.Join(valid, ", "))
	if len(e.Stderr) > 0 {
		msg += "; last lines of stderr:\n    " + strings.Join(e.Stderr, "\n    ")
	}
	return msg
}

func validStatus(valid []int, status int) bool {
	for _, v := range valid {
		if v == status {
			return true
		}
	}
	return false
}

// errTimeout is the cause of a context cancelled by a provisioner's
// timeout.
var errTimeout = errors.New("provisioner timed out")

// withTimeout applies a provisioner's timeout (0: none) to ctx.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, d, errTimeout)
}

// explainTimeout rewrites err when ctx ended by the provisioner's own
// timeout, saying so and what to do.
func explainTimeout(ctx context.Context, what string, d time.Duration, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), errTimeout) {
		return fmt.Errorf("%s: timed out after %s (timeout = %q): make it faster or raise timeout", what, d, d.String())
	}
	return err
}

// randomName returns 16 random hex digits for temporary file names.
func randomName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// progressEvery bounds how often a transfer reports progress.
const progressEvery = 200 * time.Millisecond

// progress returns a Transfer.Progress function that reports to ui under
// label at most every progressEvery, and always the end.
func progress(ui *event.UI, label string) func(done, total int64) {
	var mu sync.Mutex
	var last time.Time
	return func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if done != total && now.Sub(last) < progressEvery {
			return
		}
		last = now
		ui.Progress(label, done, total, "bytes")
	}
}

// checkEnv checks environment variable names.
func checkEnv(kw string, env map[string]string) error {
	for name := range env {
		if !shellquote.ValidName(name) {
			return schema.Errorf(kw, "%q is not a valid environment variable name (letters, digits and _, not starting with a digit)", name)
		}
	}
	return nil
}

// checkExitCodes checks valid_exit_codes.
func checkExitCodes(codes []int) error {
	if len(codes) == 0 {
		return schema.Errorf("valid_exit_codes", "is empty, so no exit status would count as success; leave it out to accept only 0")
	}
	for _, c := range codes {
		if c < 0 || c > 255 {
			return schema.Errorf("valid_exit_codes", "%d is not an exit status (0 to 255)", c)
		}
	}
	return nil
}

// exactlyOne checks that exactly one of the named keywords is set.
func exactlyOne(builtin string, names []string, set []bool) error {
	var got []string
	for i, s := range set {
		if s {
			got = append(got, names[i])
		}
	}
	list := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	switch len(got) {
	case 1:
		return nil
	case 0:
		return fmt.Errorf("%s needs one of %s", builtin, list)
	}
	return fmt.Errorf("%s takes only one of %s, got %s", builtin, list, strings.Join(got, " and "))
}

// shebangLine returns the interpreter line for inline_shebang, which may
// be written with or without "#!".
func shebangLine(s string) string {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "#!"))
	if s == "" {
		return ""
	}
	return "#!" + s + "\n"
}

// inlineScript makes a script from inline commands.
func inlineScript(shebang string, lines []string) []byte {
	var b strings.Builder
	b.WriteString(shebangLine(shebang))
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// buildEnv is the environment every script and command gets besides the
// user's: the build's name and its builder's.
func buildEnv(user map[string]string, build, driver string) map[string]string {
	env := map[string]string{"IMGBUILD_BUILD": build, "IMGBUILD_DRIVER": driver}
	for k, v := range user {
		env[k] = v
	}
	return env
}
