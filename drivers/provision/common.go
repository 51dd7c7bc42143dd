package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imgbuild/imgbuild/drivers/cfgtool"
	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// tailLines is how many lines of stderr a failed script's error quotes.
const tailLines = 5

// stderrTail keeps the last lines of a command's stderr, for the error
// that quotes them when its exit status is not valid.
func stderrTail() *cfgtool.Lines { return cfgtool.NewLines(tailLines, nil) }

// quoted returns the lines last kept, with an unterminated last one, each
// cut at 300 bytes.
func quoted(last *cfgtool.Lines) []string {
	last.Close()
	lines := last.Last()
	for i, line := range lines {
		if len(line) > 300 {
			lines[i] = line[:300] + "…"
		}
	}
	return lines
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
		msg += "; last lines of stderr:" + cfgtool.Indent(e.Stderr)
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
