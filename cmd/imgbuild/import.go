package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/starlark/importer"
	"github.com/urfave/cli/v2"
)

func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "convert a Packer template (FILE.pkr.hcl, a directory of them, or a legacy FILE.json) into a description",
		ArgsUsage: "TEMPLATE",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the description to this file (default: standard output)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return invalid(fmt.Errorf("import takes one Packer template, like imgbuild import build.pkr.hcl -o images.star"))
			}
			out := c.String("output")
			opts := importer.Options{Builtins: registry().Keywords()}
			if out != "" {
				opts.OutDir = filepath.Dir(out)
			}
			res, err := importer.Import(c.Args().First(), opts)
			if err != nil {
				return invalid(err)
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", w)
			}
			if out == "" {
				if _, err := c.App.Writer.Write(res.Source); err != nil {
					return err
				}
			} else if err := os.WriteFile(out, res.Source, 0o644); err != nil {
				return fmt.Errorf("writing the description: %w", err)
			}
			where := "standard output"
			if out != "" {
				where = out
			}
			n := len(res.Builds)
			fmt.Fprintf(c.App.ErrWriter, "imported %s into %s: %d %s (%s), %d TODO(import) %s\n", c.Args().First(), where,
				n, plural(n, "build", "builds"), strings.Join(res.Builds, ", "), res.TODOs, plural(res.TODOs, "comment", "comments"))
			for _, f := range res.VarFiles {
				fmt.Fprintf(c.App.ErrWriter, "Packer loads %s by itself; give it to imgbuild with --var-file %s\n", f, f)
			}
			return nil
		},
	}
}

// importDocs is `imgbuild docs import`: the mapping table.
func importDocs(reg *engine.Registry) string {
	return importer.Docs(func(b string) bool { _, ok := reg.Schema(b); return ok })
}
