package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/imgbuild/imgbuild/starlark/description"
	"github.com/imgbuild/imgbuild/starlark/host"
	"github.com/urfave/cli/v2"
	"go.starlark.net/starlark"
)

func consoleCommand() *cli.Command {
	return &cli.Command{
		Name:      "console",
		Usage:     "a Starlark prompt over a description's globals, to try expressions (as packer console)",
		ArgsUsage: "FILE|DIR",
		Flags:     descriptionFlags(),
		Action: withDescription(func(c *cli.Context, d *description.Description) error {
			env := starlark.StringDict{}
			for k, v := range d.Builtins {
				env[k] = v
			}
			for k, v := range d.Globals {
				env[k] = v
			}
			fmt.Fprintf(c.App.ErrWriter, "imgbuild console: %s (%d builds); an expression prints its value, exit or Ctrl-D leaves\n", d.File, len(d.Graph.Nodes))
			return console(os.Stdin, &redacting{w: c.App.Writer, redact: d.Redact}, env)
		}),
	}
}

// console reads expressions and statements line by line from in and
// prints each expression's value (secrets print as (sensitive)) or its
// error; a statement (x = 1) defines names for the next lines. A line
// ending in ":" or "\" continues on the next ones up to an empty line.
func console(in io.Reader, out io.Writer, env starlark.StringDict) error {
	sc := bufio.NewScanner(in)
	thread := &starlark.Thread{Name: "console", Print: func(_ *starlark.Thread, msg string) { fmt.Fprintln(out, msg) }}
	thread.SetMaxExecutionSteps(host.DefaultMaxSteps)
	prompt := func(more bool) {
		if more {
			fmt.Fprint(out, "... ")
		} else {
			fmt.Fprint(out, ">>> ")
		}
	}
	var chunk []string
	prompt(false)
	for sc.Scan() {
		line := sc.Text()
		if len(chunk) == 0 && strings.TrimSpace(line) == "exit" {
			return nil
		}
		chunk = append(chunk, line)
		trimmed := strings.TrimSpace(line)
		if len(chunk) > 1 && trimmed != "" || strings.HasSuffix(trimmed, ":") || strings.HasSuffix(trimmed, "\\") {
			prompt(true)
			continue
		}
		src := strings.Join(chunk, "\n")
		chunk = nil
		if strings.TrimSpace(src) != "" {
			evalLine(thread, out, src, env)
		}
		prompt(false)
	}
	fmt.Fprintln(out)
	return sc.Err()
}

func evalLine(thread *starlark.Thread, out io.Writer, src string, env starlark.StringDict) {
	if expr, err := host.FileOptions.ParseExpr("<console>", src, 0); err == nil {
		v, err := starlark.EvalExprOptions(host.FileOptions, thread, expr, env)
		if err != nil {
			fmt.Fprintf(out, "error: %v\n", host.Describe(err))
			return
		}
		if v != starlark.None {
			fmt.Fprintln(out, v.String())
		}
		return
	}
	f, err := host.FileOptions.Parse("<console>", src, 0)
	if err != nil {
		fmt.Fprintf(out, "error: %v\n", host.Describe(err))
		return
	}
	prog, err := starlark.FileProgram(f, func(name string) bool { _, ok := env[name]; return ok })
	if err != nil {
		fmt.Fprintf(out, "error: %v\n", host.Describe(err))
		return
	}
	g, err := prog.Init(thread, env)
	if err != nil {
		fmt.Fprintf(out, "error: %v\n", host.Describe(err))
	}
	for k, v := range g {
		env[k] = v
	}
}

// redacting hides secrets in what the console prints.
type redacting struct {
	w      io.Writer
	redact func(string) string
}

func (r *redacting) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, r.redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
