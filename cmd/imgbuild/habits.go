package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/urfave/cli/v2"
)

// This file holds what makes imgbuild behave as Packer and Terraform users
// expect of any command line: --no-color everywhere, --version, "did you
// mean" for a mistyped command, help without doubled defaults, completion
// of flags, and IMGBUILD_LOG for the internal debug log.

// noColorFlag is accepted by every command and by imgbuild itself.
func noColorFlag() cli.Flag {
	return &cli.BoolFlag{Name: "no-color", Usage: "no colour, even on a terminal (the NO_COLOR environment variable does the same)"}
}

// usageError reports a bad flag or argument in one line that says where
// the help is, rather than printing the whole help.
func usageError(c *cli.Context, err error, _ bool) error {
	return invalid(fmt.Errorf("%v (run imgbuild help %s)", err, c.Command.Name))
}

// addCommonFlags gives every command the flags all of them take, and the
// one way of reporting a usage error.
func addCommonFlags(cmds []*cli.Command) {
	for _, c := range cmds {
		if c.OnUsageError == nil {
			c.OnUsageError = usageError
		}
		if !hasFlag(c, "no-color") {
			c.Flags = append(c.Flags, noColorFlag())
		}
	}
}

func hasFlag(c *cli.Command, name string) bool {
	for _, f := range c.Flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}

// noColor reports whether colour is off: --no-color given to the command
// or to imgbuild itself, or NO_COLOR set (to anything), or TERM=dumb.
func noColor(c *cli.Context) bool {
	for _, x := range c.Lineage() {
		if x.Bool("no-color") {
			return true
		}
	}
	return os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb"
}

// unknownCommand is imgbuild's action when the first argument names no
// command: "did you mean".
func unknownCommand(c *cli.Context) error {
	if c.NArg() == 0 {
		return cli.ShowAppHelp(c)
	}
	name := c.Args().First()
	var names []string
	for _, cmd := range c.App.VisibleCommands() {
		names = append(names, cmd.Names()...)
	}
	msg := fmt.Sprintf("imgbuild has no command %q", name)
	if near := schema.Nearest(name, names); near != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", near)
	}
	return invalid(fmt.Errorf("%s; run imgbuild help for the list", msg))
}

// flagString is urfave/cli's flag help line without the "(default: false)"
// of a boolean and without a second "(default: …)" when the usage already
// says what the default is.
func flagString(f cli.Flag) string {
	s := defaultFlagStringer(f)
	s = strings.Replace(s, " (default: false)", "", 1)
	if first := strings.Index(s, "(default:"); first >= 0 {
		if last := strings.LastIndex(s, " (default:"); last > first {
			end := strings.Index(s[last+1:], ")")
			if end >= 0 {
				s = s[:last] + s[last+1+end+1:]
			}
		}
	}
	return s
}

var defaultFlagStringer = cli.FlagStringer

func init() {
	cli.FlagStringer = flagString
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version, as imgbuild version does"}
	cli.VersionPrinter = func(c *cli.Context) { writeVersion(c.App.Writer) }
}

// completeFlag is the argument urfave/cli's completion scripts end with.
const completeFlag = "--generate-bash-completion"

// complete answers a completion request (args ending in completeFlag): the
// word being completed is the one before it. A word starting with "-"
// (including "-" and "--") gets the command's flags that start with it, a
// word after the command its own completion (docs lists builtins), and a
// first word the commands. It reports whether args was such a request.
func complete(app *cli.App, args []string, w io.Writer) bool {
	if len(args) < 2 || args[len(args)-1] != completeFlag {
		return false
	}
	words := args[1 : len(args)-1]
	cur := ""
	if len(words) > 0 && strings.HasPrefix(words[len(words)-1], "-") {
		cur = words[len(words)-1]
		words = words[:len(words)-1]
	}
	var cmd *cli.Command
	if len(words) > 0 {
		cmd = app.Command(words[0])
	}
	// A command with subcommands (ci, mod): the subcommand named next.
	for cmd != nil && len(cmd.Subcommands) > 0 && len(words) > 1 {
		sub := cmd.Command(words[1])
		if sub == nil {
			break
		}
		cmd, words = sub, words[1:]
	}
	if strings.HasPrefix(cur, "-") {
		flags := app.Flags
		if cmd != nil {
			flags = cmd.Flags
		}
		for _, f := range flags {
			for _, n := range f.Names() {
				if len(n) > 1 && strings.HasPrefix("--"+n, cur) && !slices.Contains(words, "--"+n) {
					fmt.Fprintln(w, "--"+n)
				}
			}
		}
		return true
	}
	if cmd == nil {
		for _, c := range app.VisibleCommands() {
			fmt.Fprintln(w, c.Name)
		}
		return true
	}
	if len(cmd.Subcommands) > 0 {
		for _, c := range cmd.VisibleCommands() {
			fmt.Fprintln(w, c.Name)
		}
		return true
	}
	if cmd.BashComplete != nil {
		ctx := cli.NewContext(app, nil, nil)
		cmd.BashComplete(ctx)
	}
	return true
}

// setUpDebugLog makes IMGBUILD_LOG=debug (the PACKER_LOG habit) write
// imgbuild's internal log to standard error: slog's default logger, which
// the command line and the engine's events write to. info, warn and error
// choose less; anything else is reported and ignored. It returns what puts
// the previous logger back.
func setUpDebugLog(stderr io.Writer) (restore func()) {
	prev := slog.Default()
	restore = func() { slog.SetDefault(prev) }
	lvl := strings.ToLower(strings.TrimSpace(os.Getenv("IMGBUILD_LOG")))
	if lvl == "" || lvl == "0" || lvl == "off" {
		return restore
	}
	var level slog.Level
	switch lvl {
	case "debug", "1", "trace", "true":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		fmt.Fprintf(stderr, "warning: IMGBUILD_LOG=%q: want debug, info, warn or error; no debug log\n", lvl)
		return restore
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
	slog.Debug("debug log on", "IMGBUILD_LOG", lvl, "version", version())
	return restore
}

// debugLog is a sink writing every event of a run to the debug log
// (IMGBUILD_LOG=debug); events reach it redacted, as every sink.
func debugLog() event.Sink {
	return event.SinkFunc(func(e event.Event) {
		if !slog.Default().Enabled(context.Background(), slog.LevelDebug) {
			return
		}
		attrs := []any{"type", e.Type}
		for _, kv := range [][2]string{{"build", e.Build}, {"step", e.Step}, {"stream", e.Stream}, {"message", e.Message}, {"status", string(e.Status)}, {"error", e.Error}} {
			if kv[1] != "" {
				attrs = append(attrs, kv[0], kv[1])
			}
		}
		if len(e.Items) > 0 {
			attrs = append(attrs, "items", e.Items)
		}
		slog.Debug("event", attrs...)
	})
}
