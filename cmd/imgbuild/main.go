// Command imgbuild builds machine images for several platforms at once from
// Starlark descriptions.
//
//	imgbuild plan images.star   # what would be built, in which order, and why
//	imgbuild run images.star    # build it
//
// This package is the command line: flags in, exit codes out. It wires the
// description loader, the engine, the renderers and the drivers together
// and knows nothing of how anything is built.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/imgbuild/imgbuild/builtins"
	"github.com/urfave/cli/v2"
)

// Exit codes.
const (
	exitOK          = 0   // every build succeeded
	exitBuildFailed = 1   // a build failed (or fmt --check found files to format)
	exitInvalid     = 2   // invalid description or usage
	exitInterrupted = 130 // interrupted by SIGINT or SIGTERM
)

func main() {
	ignoreSIGPIPE()
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run runs the command line and returns the exit code. Writing to stdout
// or stderr never fails a command (see outputErrors).
func run(args []string, stdout, stderr io.Writer) int {
	stdout, stdoutErr := keepWriting(stdout)
	stderr, _ = keepWriting(stderr) // nowhere to say it failed
	defer setUpDebugLog(stderr)()
	app := newApp(stdout, stderr)
	if complete(app, args, stdout) {
		return exitOK
	}
	err := app.Run(interspersed(app, args))
	code := exitCode(err, stderr)
	if code == exitInvalid && jsonRequested(args) {
		writeJSONError(stdout, code, err)
	}
	warnOutput(stderr, "standard output", stdoutErr())
	return code
}

// exitError carries an exit code and an optional message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// invalid marks err as an invalid description or usage (exit 2).
func invalid(err error) error { return &exitError{code: exitInvalid, err: err} }

// exitWith returns an error that exits with code and prints nothing more.
func exitWith(code int) error { return &exitError{code: code} }

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		var list builtins.ErrorList
		switch {
		case errors.As(ee.err, &list) && len(list) > 1:
			// validate's habit: every mistake, then how many.
			for _, e := range list {
				fmt.Fprintf(stderr, "error: %v\n", e)
			}
			fmt.Fprintf(stderr, "%d errors\n", len(list))
		case ee.err != nil:
			fmt.Fprintf(stderr, "error: %v\n", ee.err)
		}
		return ee.code
	}
	// Anything urfave/cli reports itself (unknown flag, missing argument)
	// is a usage error.
	fmt.Fprintf(stderr, "error: %v\n", err)
	return exitInvalid
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 "imgbuild",
		Usage:                "build machine images for several platforms at once from Starlark descriptions",
		Version:              version(),
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		Flags:                []cli.Flag{noColorFlag()},
		Action:               unknownCommand,
		// --var name=value takes the value whole: a list written as JSON
		// or a password holding a comma is one value, never split (--only
		// and --except split their own lists).
		DisableSliceFlagSeparator: true,
		ExitErrHandler:            func(*cli.Context, error) {}, // exit codes are ours
		OnUsageError:              usageError,
		Commands: []*cli.Command{
			validateCommand(),
			planCommand(),
			runCommand(),
			cleanupCommand(),
			inspectCommand(),
			consoleCommand(),
			logsCommand(),
			fmtCommand(),
			docsCommand(),
			importCommand(),
			ciCommand(),
			modCommand(),
			cacheCommand(),
			versionCommand(),
			completionCommand(),
		},
	}
	addCommonFlags(app.Commands)
	return app
}
