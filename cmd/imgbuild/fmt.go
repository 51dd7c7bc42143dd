package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/bazelbuild/buildtools/build"
	"github.com/urfave/cli/v2"
)

func fmtCommand() *cli.Command {
	return &cli.Command{
		Name:      "fmt",
		Usage:     "format descriptions (buildifier's style); with no FILES, every .star file below the current directory",
		ArgsUsage: "[FILES]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "check", Usage: "change nothing; list the files that need formatting and exit 1 if any do"},
		},
		Action: func(c *cli.Context) error {
			files := c.Args().Slice()
			if len(files) == 0 {
				var err error
				if files, err = starFiles("."); err != nil {
					return err
				}
			}
			unformatted := 0
			for _, f := range files {
				changed, err := formatFile(f, !c.Bool("check"))
				if err != nil {
					return invalid(err)
				}
				if changed {
					unformatted++
					if c.Bool("check") {
						fmt.Fprintf(c.App.Writer, "%s needs formatting\n", f)
					} else {
						fmt.Fprintf(c.App.Writer, "formatted %s\n", f)
					}
				}
			}
			if c.Bool("check") && unformatted > 0 {
				fmt.Fprintf(c.App.ErrWriter, "%d %s need formatting: run imgbuild fmt\n", unformatted, plural(unformatted, "file", "files"))
				return exitWith(exitBuildFailed)
			}
			return nil
		},
	}
}

// starFiles lists the .star files below dir, skipping hidden directories
// and build output.
func starFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != dir && (strings.HasPrefix(d.Name(), ".") || d.Name() == "output") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".star") {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// formatFile reports whether the file's formatting differs; with write, it
// rewrites the file.
func formatFile(path string, write bool) (bool, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	f, err := build.ParseDefault(path, src)
	if err != nil {
		return false, fmt.Errorf("cannot format %v", err)
	}
	out := build.Format(f)
	if bytes.Equal(out, src) {
		return false, nil
	}
	if write {
		st, err := os.Stat(path)
		if err != nil {
			return false, err
		}
		if err := os.WriteFile(path, out, st.Mode().Perm()); err != nil {
			return false, err
		}
	}
	return true, nil
}
