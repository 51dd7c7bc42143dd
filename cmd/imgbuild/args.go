package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed moves a command's flags written after its arguments in front
// of them (imgbuild run images.star --var v=1 → run --var v=1 images.star),
// since urfave/cli stops reading flags at the first argument. A "--" ends
// the flags, as usual.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	var cmd *cli.Command
	for _, c := range app.Commands {
		if c.HasName(args[1]) {
			cmd = c
		}
	}
	if cmd == nil {
		return args
	}
	// A subcommand (imgbuild ci github ...) takes its own flags.
	depth := 2
	for depth < len(args) {
		var sub *cli.Command
		for _, c := range cmd.Subcommands {
			if c.HasName(args[depth]) {
				sub = c
			}
		}
		if sub == nil {
			break
		}
		cmd, depth = sub, depth+1
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, positional []string
	rest := args[depth:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			positional = append(positional, rest[i:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if takesValue[name] && i+1 < len(rest) {
			flags = append(flags, rest[i+1])
			i++
		}
	}
	out := append(append([]string(nil), args[:depth]...), flags...)
	return append(out, positional...)
}
