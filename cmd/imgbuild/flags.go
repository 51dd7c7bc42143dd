package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/imgbuild/imgbuild/builtins"
	"github.com/imgbuild/imgbuild/starlark/description"
	"github.com/urfave/cli/v2"
)

// descriptionFlags are the flags of validate, plan and run.
func descriptionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "var", Usage: "set a variable: --var name=value (repeatable)"},
		&cli.StringSliceFlag{Name: "var-file", Usage: "read variables from a JSON file or a .star file of plain assignments (repeatable)"},
		&cli.StringSliceFlag{Name: "only", Usage: "build only these builds (names or globs, comma-separated or repeated); the builds they depend on come along"},
		&cli.StringSliceFlag{Name: "except", Usage: "skip these builds (names or globs)"},
	}
}

// readVars gathers --var-file and --var values; --var wins over files, and
// later files over earlier ones.
func readVars(c *cli.Context) (map[string]builtins.VarValue, error) {
	vars := map[string]builtins.VarValue{}
	for _, f := range c.StringSlice("var-file") {
		got, err := builtins.ReadVarFile(f)
		if err != nil {
			return nil, err
		}
		for k, v := range got {
			vars[k] = v
		}
	}
	for _, kv := range c.StringSlice("var") {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--var %q: write it as --var name=value", kv)
		}
		vars[name] = builtins.VarValue{Raw: val, Source: "--var"}
	}
	return vars, nil
}

// loadDescription evaluates the file named by the command's argument and
// applies --only/--except. Every error it returns is an invalid
// description or usage.
func loadDescription(c *cli.Context) (*description.Description, error) {
	if c.NArg() != 1 {
		return nil, invalid(fmt.Errorf("%s takes one description file, like imgbuild %s images.star", c.Command.Name, c.Command.Name))
	}
	file := c.Args().First()
	if _, err := os.Stat(file); err != nil {
		return nil, invalid(fmt.Errorf("cannot read the description: %v", err))
	}
	vars, err := readVars(c)
	if err != nil {
		return nil, invalid(err)
	}
	d, err := description.Load(description.Options{
		File:     file,
		Registry: registry(),
		Vars:     vars,
		Getenv:   os.LookupEnv,
		Print: func(pos, msg string) {
			fmt.Fprintf(c.App.ErrWriter, "%s: %s\n", pos, msg)
		},
	})
	if err != nil {
		return nil, invalid(err)
	}
	g, err := d.Graph.Select(splitList(c.StringSlice("only")), splitList(c.StringSlice("except")))
	if err != nil {
		return nil, invalid(err)
	}
	d.Graph = g
	return d, nil
}

// splitList splits comma-separated values of a repeatable flag.
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
