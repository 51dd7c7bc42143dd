package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/step"
	"golang.org/x/term"
)

// This file holds the two ways a person steps into a run, as with Packer:
//
//   - --on-error ask: after a failed step, ask whether to clean up, abort
//     (keep everything and say how to reach the machine) or retry the step;
//   - --debug: pause before each step, saying how to reach the machine.
//
// Both talk on the terminal (questions on standard error, answers from
// standard input) one build at a time, and print plain lines rather than
// the live board, which would draw over the questions.

// asker asks questions on a terminal, one at a time across builds.
type asker struct {
	mu  sync.Mutex
	in  *bufio.Reader
	out io.Writer
	// keyDir holds --debug's key files; removed by close.
	keyDir string
	// kept are key files written for an abort, which outlive the run.
	kept map[string]string
}

// newAsker returns an asker reading answers from in, which must be a
// terminal: what mode wants one says so in the error.
func newAsker(in *os.File, out io.Writer, mode string) (*asker, error) {
	if !term.IsTerminal(int(in.Fd())) {
		return nil, fmt.Errorf("%s asks questions on a terminal, and standard input is not one: in CI use --on-error cleanup or abort", mode)
	}
	return &asker{in: bufio.NewReader(in), out: out, kept: map[string]string{}}, nil
}

// close removes --debug's key files.
func (a *asker) close() {
	if a != nil && a.keyDir != "" {
		os.RemoveAll(a.keyDir)
	}
}

// ask prints the question and reads one line, lower-cased and trimmed;
// io.EOF (the terminal closed) or a cancelled run answers def.
func (a *asker) ask(ctx context.Context, question, def string) string {
	fmt.Fprint(a.out, question)
	got := make(chan string, 1)
	go func() {
		line, err := a.in.ReadString('\n')
		if err != nil && line == "" {
			line = def
		}
		got <- strings.ToLower(strings.TrimSpace(line))
	}()
	select {
	case ans := <-got:
		return ans
	case <-ctx.Done():
		fmt.Fprintln(a.out)
		return def
	}
}

// failed is --on-error ask's step.Hooks.Failed.
func (a *asker) failed(ctx context.Context, ui *event.UI, s step.Step, err error) step.Decision {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := ui.Build()
	fmt.Fprintf(a.out, "\n%s: step %q failed:\n  %s\n", b, s.Name(), strings.ReplaceAll(err.Error(), "\n", "\n  "))
	if how := a.reach(ui, false); how != "" {
		fmt.Fprintf(a.out, "  the machine: %s\n", how)
	}
	for {
		switch a.ask(ctx, b+": [c]lean up, [a]bort (keep everything), or [r]etry the step? ", "c") {
		case "c", "clean", "clean up", "cleanup", "":
			return step.CleanUpAll
		case "a", "abort":
			if how := a.reach(ui, true); how != "" {
				fmt.Fprintf(a.out, "%s: kept for debugging; reach the machine with:\n  %s\n", b, how)
			} else {
				fmt.Fprintf(a.out, "%s: kept for debugging\n", b)
			}
			return step.KeepAll
		case "r", "retry":
			return step.Retry
		default:
			fmt.Fprintln(a.out, "  answer c, a or r")
		}
	}
}

// errAborted is the error of a build the user aborted at a --debug pause.
var errAborted = errors.New("aborted at the --debug pause")

// before is --debug's step.Hooks.Before.
func (a *asker) before(ctx context.Context, ui *event.UI, s step.Step) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := ui.Build()
	fmt.Fprintf(a.out, "\n%s: next step: %s\n", b, s.Name())
	if how := a.reach(ui, false); how != "" {
		fmt.Fprintf(a.out, "  the machine: %s\n", how)
	}
	for {
		switch a.ask(ctx, b+": press Enter to run it, or type a to abort the build: ", "") {
		case "":
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return nil
		case "a", "abort":
			return errAborted
		default:
			fmt.Fprintln(a.out, "  press Enter, or type a")
		}
	}
}

// reach says how to reach the build's machine: an ssh command line with
// the build's key (written to a 0600 file: in --debug's directory, removed
// at the end, or with keep in one that stays, for an abort), or the
// driver's own command; "" when no step has said.
func (a *asker) reach(ui *event.UI, keep bool) string {
	acc := ui.Access()
	if acc == nil {
		return ""
	}
	if acc.Host == "" {
		return acc.Command
	}
	keyFile := acc.KeyFile
	if len(acc.Key) > 0 {
		var err error
		if keyFile, err = a.keyFile(ui.Build(), acc.Key, keep); err != nil {
			return fmt.Sprintf("(cannot write the build's key: %v)", err)
		}
	}
	return sshCommand(acc, keyFile)
}

// keyFile writes the build's private key to a 0600 file and returns its
// path; the same build gets the same file.
func (a *asker) keyFile(build string, key []byte, keep bool) (string, error) {
	if keep {
		if p, ok := a.kept[build]; ok {
			return p, nil
		}
		dir, err := os.MkdirTemp("", "imgbuild-key-")
		if err != nil {
			return "", err
		}
		p := filepath.Join(dir, safeKeyName(build))
		if err := os.WriteFile(p, key, 0o600); err != nil {
			return "", err
		}
		a.kept[build] = p
		return p, nil
	}
	if a.keyDir == "" {
		dir, err := os.MkdirTemp("", "imgbuild-debug-")
		if err != nil {
			return "", err
		}
		a.keyDir = dir
	}
	p := filepath.Join(a.keyDir, safeKeyName(build))
	return p, os.WriteFile(p, key, 0o600)
}

func safeKeyName(build string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, build) + ".key"
}

// sshCommand is the command line that logs in as the build does. Host keys
// are not checked: the machine is a temporary one the build made.
func sshCommand(acc *event.Access, keyFile string) string {
	args := []string{"ssh"}
	if keyFile != "" {
		args = append(args, "-i", keyFile, "-o", "IdentitiesOnly=yes")
	}
	if acc.Port != 0 && acc.Port != 22 {
		args = append(args, "-p", strconv.Itoa(acc.Port))
	}
	if acc.Jump != "" {
		args = append(args, "-J", acc.Jump)
	}
	args = append(args, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", acc.User+"@"+acc.Host)
	for i, a := range args {
		if strings.ContainsAny(a, " '\"$\\") {
			args[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(args, " ")
}
