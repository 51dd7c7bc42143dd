package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/journal"
	"github.com/imgbuild/imgbuild/engine/render"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/urfave/cli/v2"
)

// osExit stops the process at once on a second interrupt; tests replace it.
var osExit = os.Exit

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Aliases:   []string{"build"},
		Usage:     "build the images a description asks for, or exactly the plan plan -out saved",
		ArgsUsage: "FILE|DIR|PLAN",
		Description: "FILE is a description, DIR a directory holding images.star, PLAN a plan saved by\n" +
			"imgbuild plan -out PLAN (told by its content): run builds exactly its builds in its order,\n" +
			"with the variables, var files and --only/--except it was made with, and refuses it, naming\n" +
			"what changed, when the description, a file it reads or a variable changed since. A sensitive\n" +
			"value is not in the plan: give it again (--var or IMGBUILD_VAR_<name>); other --var,\n" +
			"--var-file, --only and --except must be the plan's.",
		Flags: append(append(append(descriptionFlags(), stateFlags()...), runStateFlags()...),
			&cli.IntFlag{Name: "parallel", Value: 8, Usage: "how many builds may run at once"},
			&cli.BoolFlag{Name: "fail-fast", Usage: "cancel the other builds on the first failure (default: builds that do not depend on it go on)"},
			&cli.StringFlag{Name: "on-error", Value: "cleanup", Usage: "what to do with a failed build's resources: cleanup, abort (keep them for debugging and list them), or ask (on a terminal: clean up, abort, or retry the step)"},
			&cli.BoolFlag{Name: "debug", Usage: "pause before each step and say how to reach the machine (an ssh command line with the build's key, in a 0600 file removed at the end)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON event per line"},
			&cli.BoolFlag{Name: "no-color", Usage: "plain lines without colour, even on a terminal (the NO_COLOR environment variable does the same)"},
			&cli.BoolFlag{Name: "timestamps", Usage: "start each output line with the time"},
			&cli.StringFlag{Name: "junit", Usage: "write the results of the builds' tests = [...] to this file as JUnit XML, which CI systems show (a testsuite per build, a testcase per test)"},
			&cli.StringFlag{Name: "trace", Usage: "write a Chrome/Perfetto trace of the run to this file: a track per build, a span per step and provisioner (open it in ui.perfetto.dev or chrome://tracing)"},
		),
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	d, saved, err := loadRunArg(c)
	if err != nil {
		return err
	}
	var policy step.Policy
	var hooks step.Hooks
	var ask *asker
	interactive := c.String("on-error") == "ask" || c.Bool("debug")
	if interactive {
		mode := "--on-error ask"
		if c.Bool("debug") {
			mode = "--debug"
		}
		if ask, err = newAsker(os.Stdin, c.App.ErrWriter, mode); err != nil {
			return invalid(err)
		}
		defer ask.close()
	}
	switch c.String("on-error") {
	case "cleanup":
		policy = step.Cleanup
	case "abort":
		policy = step.Abort
	case "ask":
		hooks.Failed = ask.failed
	default:
		return invalid(fmt.Errorf("--on-error %q: want cleanup, abort or ask", c.String("on-error")))
	}
	if c.Bool("debug") {
		hooks.Before = ask.before
	}
	if c.Int("parallel") < 1 {
		return invalid(fmt.Errorf("--parallel %d: want at least 1", c.Int("parallel")))
	}
	// Paths printed for the user are relative to where imgbuild started;
	// builds see paths relative to the workspace root.
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	if err := os.Chdir(d.Root); err != nil {
		return err
	}
	tmp := filepath.Join(d.Root, ".imgbuild", "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}

	bus := event.NewBus()
	for _, s := range d.Secrets {
		bus.AddSecret(s)
	}
	rend := render.New(render.Options{Out: c.App.Writer, JSON: c.Bool("json"), NoColor: noColor(c) || interactive, Timestamps: c.Bool("timestamps")})
	bus.Subscribe(rend)
	tails := render.NewTails()
	bus.Subscribe(tails)
	closeTrace, err := startTrace(c, cwd, bus)
	if err != nil {
		rend.Close()
		return err
	}
	junit, err := openJUnit(c, cwd)
	if err != nil {
		rend.Close()
		closeTrace()
		return err
	}
	say := func(warn bool, text string) {
		typ := event.Message
		if warn {
			typ = event.Warning
		}
		bus.Emit(event.Event{Type: typ, Message: text})
	}
	// The journal names the run, and records what it creates before it
	// creates it; what runs that died left is removed first.
	jr, restoreEnv, err := startJournal(c, d.Root, say)
	if err != nil {
		rend.Close()
		return fmt.Errorf("starting the run's journal in %s: %w", journal.Dir(d.Root), err)
	}
	defer restoreEnv()
	runID := jr.ID()
	logDir := render.LogDir(d.Root, runID)
	logs := render.NewLogs(logDir)
	bus.Subscribe(logs)
	bus.Subscribe(debugLog())

	tracker := step.NewTracker()
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	interrupted := watchSignals(ctx, cancel, tracker, c, bus)

	store, fp, err := openState(c, d)
	if err != nil {
		rend.Close()
		return err
	}
	if saved != nil {
		if err := samePlanMarks(c, d, saved, store, fp); err != nil {
			rend.Close()
			return err
		}
		n := len(saved.Builds)
		say(false, fmt.Sprintf("running the plan in %s, made %s: %d %s (%s)", c.Args().First(), saved.Created.Format(time.RFC3339), n, plural(n, "build", "builds"), strings.Join(saved.BuildNames(), ", ")))
	}
	forced, err := forceBuilds(c, d)
	if err != nil {
		rend.Close()
		return err
	}
	locks, err := lockOptions(c, runner(jr.ID()))
	if err != nil {
		rend.Close()
		return err
	}
	reg := registry()
	sum := engine.Run(ctx, d.Graph, reg, bus, engine.RunOptions{
		Store:         store,
		Fingerprinter: fp,
		Force:         c.Bool("force"),
		ForceBuilds:   forced,
		Lock:          locks,
		Parallel:      c.Int("parallel"),
		FailFast:      c.Bool("fail-fast"),
		OnError:       policy,
		Workspace:     d.Root,
		TempDir:       tmp,
		Tracker:       tracker,
		Journal:       jr,
		// run_id() is the run's journal and log name; timestamp() is now.
		RunID: runID,
		Start: time.Now(),
		Hooks: &hooks,
	})
	if err := junit(sum, d.Graph, d.Root, bus.Redact); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "warning: writing the JUnit report: %v\n", err)
	}
	jerr := jr.Close(true)
	if err := closeTrace(); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "warning: writing the trace: %v\n", err)
	}
	rendErr := rend.Close()
	logErr := logs.Close()

	if err := store.Close(context.WithoutCancel(ctx)); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "warning: could not record state: %v\n", err)
	}
	annotateFailures(c.App.Writer, d.Graph, cwd, d.Root, sum.Results, bus.Redact)
	if !c.Bool("json") {
		color := !noColor(c) && render.IsTerminal(c.App.Writer)
		fmt.Fprintln(c.App.Writer)
		err := render.WriteSummaryWith(c.App.Writer, sum.Results, render.SummaryOptions{
			Color: color, Redact: bus.Redact, Tails: tails,
			Path: func(p string) string { return shownPath(cwd, d.Root, p) },
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "logs: %s\n", relTo(cwd, logDir))
		where := store.Where()
		if _, local := store.(*engine.LocalStore); local {
			where = relTo(cwd, engine.StatePath(d.Root))
		}
		fmt.Fprintf(c.App.Writer, "state: %s\n", where)
	}
	for _, e := range append([]error{rendErr, logErr, jerr}, bus.Broken()...) {
		if e != nil {
			fmt.Fprintf(c.App.ErrWriter, "warning: %v\n", e)
		}
	}
	switch {
	case interrupted():
		return exitWith(exitInterrupted)
	case !sum.OK():
		return exitWith(exitBuildFailed)
	}
	return nil
}

// watchSignals cancels the run on the first SIGINT or SIGTERM; on a second
// it lists what may be left and exits at once. It returns whether a signal
// came.
func watchSignals(ctx context.Context, cancel context.CancelFunc, tracker *step.Tracker, c *cli.Context, bus *event.Bus) func() bool {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	got := make(chan struct{})
	go func() {
		defer signal.Stop(sigs)
		select {
		case <-ctx.Done():
			return
		case s := <-sigs:
			close(got)
			fmt.Fprintf(c.App.ErrWriter, "\n%s: cancelling the builds and cleaning up; interrupt again to stop at once\n", s)
			// Also on the board, where it stays while the rows show their
			// cleanup steps.
			bus.Emit(event.Event{Type: event.RunCancelling, Message: s.String() + ": cancelling, cleaning up… (interrupt again to stop at once)"})
			cancel()
		}
		s := <-sigs
		fmt.Fprintf(c.App.ErrWriter, "\n%s again: stopping at once, without cleaning up\n", s)
		if left := tracker.Pending(); len(left) > 0 {
			fmt.Fprintf(c.App.ErrWriter, "may be left behind:\n")
			for _, l := range left {
				fmt.Fprintf(c.App.ErrWriter, "  %s\n", l)
			}
		} else {
			fmt.Fprintf(c.App.ErrWriter, "nothing is known to be left behind\n")
		}
		fmt.Fprintf(c.App.ErrWriter, "the run's journal lists what it made: the next run, or imgbuild cleanup, removes it\n")
		osExit(exitInterrupted)
	}()
	return func() bool {
		select {
		case <-got:
			return true
		default:
			return false
		}
	}
}

// shownPath shows a path an artifact names (relative to the workspace, or
// absolute) relative to the directory imgbuild started in, when it is a
// file or directory that exists; anything else (an AMI id) as it is.
func shownPath(cwd, root, p string) string {
	abs := p
	if !filepath.IsAbs(p) {
		abs = filepath.Join(root, p)
	}
	if _, err := os.Stat(abs); err != nil {
		return p
	}
	return relTo(cwd, abs)
}

// relTo is p relative to dir, or p when it has no relative form.
func relTo(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}

// startTrace subscribes a Chrome trace of the run to bus when --trace names
// a file (relative to where imgbuild started), and returns what writes it.
func startTrace(c *cli.Context, cwd string, bus *event.Bus) (func() error, error) {
	name := c.String("trace")
	if name == "" {
		return func() error { return nil }, nil
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(cwd, name)
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, invalid(fmt.Errorf("--trace: %w", err))
	}
	tr := render.NewTrace(f)
	bus.Subscribe(tr)
	return func() error {
		return errors.Join(tr.Close(), f.Close())
	}, nil
}

// openJUnit creates the file of --junit at once, so that a path that
// cannot be written is a usage error before anything is built, and
// returns what writes the report into it at the end of the run.
func openJUnit(c *cli.Context, cwd string) (func(sum *engine.Summary, g *engine.Graph, root string, redact func(string) string) error, error) {
	name := c.String("junit")
	if name == "" {
		return func(*engine.Summary, *engine.Graph, string, func(string) string) error { return nil }, nil
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(cwd, name)
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, invalid(fmt.Errorf("--junit: %w", err))
	}
	return func(sum *engine.Summary, g *engine.Graph, root string, redact func(string) string) error {
		tests := map[string][]string{}
		for _, n := range g.Nodes {
			if len(n.Tests) > 0 {
				tests[n.Name] = engine.TestNames(n.Tests, root)
			}
		}
		return errors.Join(render.WriteJUnit(f, sum.Results, tests, redact), f.Close())
	}, nil
}
