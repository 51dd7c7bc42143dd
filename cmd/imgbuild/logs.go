package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/imgbuild/imgbuild/engine/render"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/urfave/cli/v2"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:  "logs",
		Usage: "print a run's logs: the last run's by default, or one build's",
		Description: `imgbuild logs                 the last run: its index (run.log), then every build's log
   imgbuild logs web             the last run's log of build web
   imgbuild logs RUN [BUILD]     an earlier run (a run id from imgbuild logs --list, or a prefix of one)

The logs are read from .imgbuild/logs in the workspace: the current directory or the
nearest one above it that has them, or the one -C names.`,
		ArgsUsage: "[RUN] [BUILD]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "C", Usage: "look for the workspace's logs from this directory instead of the current one"},
			&cli.BoolFlag{Name: "list", Usage: "list the runs, oldest first, and the builds each logged"},
		},
		Action: logsAction,
	}
}

func logsAction(c *cli.Context) error {
	from := c.String("C")
	if from == "" {
		from = "."
	}
	base, err := findLogs(from)
	if err != nil {
		return invalid(err)
	}
	runs, err := listRuns(base)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		return invalid(fmt.Errorf("no runs are logged in %s yet", relToCwd(base)))
	}
	if c.Bool("list") {
		for _, r := range runs {
			fmt.Fprintf(c.App.Writer, "%s  %s\n", r, strings.Join(buildsLogged(filepath.Join(base, r)), ", "))
		}
		return nil
	}
	args := c.Args().Slice()
	if len(args) > 2 {
		return invalid(fmt.Errorf("logs takes at most a run and a build, like imgbuild logs %s web", runs[len(runs)-1]))
	}
	run := runs[len(runs)-1]
	if len(args) > 0 {
		if r, ok := pickRun(runs, args[0]); ok {
			run, args = r, args[1:]
		} else if len(args) == 2 {
			return invalid(fmt.Errorf("no run %q in %s (runs: %s)", args[0], relToCwd(base), strings.Join(lastN(runs, 5), ", ")))
		}
	}
	dir := filepath.Join(base, run)
	builds := buildsLogged(dir)
	if len(args) == 1 {
		name := args[0]
		if !slices.Contains(builds, name) {
			msg := fmt.Sprintf("run %s has no log of build %q", run, name)
			if near := schema.Nearest(name, builds); near != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", near)
			}
			return invalid(fmt.Errorf("%s; its builds: %s", msg, strings.Join(builds, ", ")))
		}
		return copyFile(c.App.Writer, filepath.Join(dir, logFileOf(name)))
	}
	fmt.Fprintf(c.App.Writer, "==> run %s (%s)\n", run, relToCwd(dir))
	if err := copyFile(c.App.Writer, filepath.Join(dir, render.RunLog)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, b := range builds {
		fmt.Fprintf(c.App.Writer, "\n==> %s\n", b)
		if err := copyFile(c.App.Writer, filepath.Join(dir, logFileOf(b))); err != nil {
			return err
		}
	}
	return nil
}

// findLogs returns the .imgbuild/logs directory of from or of the nearest
// directory above it that has one.
func findLogs(from string) (string, error) {
	abs, err := filepath.Abs(from)
	if err != nil {
		return "", err
	}
	for dir := abs; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, ".imgbuild", "logs")
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p, nil
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	return "", fmt.Errorf("no .imgbuild/logs in %s or above it: run imgbuild logs in the workspace of a description that ran (the directory of its imgbuild.mod, or of the file), or name it with -C DIR", relToCwd(abs))
}

// listRuns lists the run ids under base, oldest first (ids sort in time
// order).
func listRuns(base string) ([]string, error) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, err
	}
	var runs []string
	for _, e := range entries {
		if e.IsDir() {
			runs = append(runs, e.Name())
		}
	}
	slices.Sort(runs)
	return runs, nil
}

// pickRun finds the run arg names: an id, the newest run an id prefix
// matches, or "last".
func pickRun(runs []string, arg string) (string, bool) {
	if arg == "last" {
		return runs[len(runs)-1], true
	}
	for i := len(runs) - 1; i >= 0; i-- {
		if strings.HasPrefix(runs[i], arg) {
			return runs[i], true
		}
	}
	return "", false
}

// buildsLogged lists the builds a run directory has logs of, by the names
// run.log gives them ("<time> web | build started"), in the order they
// started; builds whose names could not be read are listed by file name.
func buildsLogged(dir string) []string {
	var names []string
	data, _ := os.ReadFile(filepath.Join(dir, render.RunLog))
	for _, l := range strings.Split(string(data), "\n") {
		_, rest, ok := strings.Cut(l, " ")
		name, _, ok2 := strings.Cut(rest, " | ")
		if ok && ok2 && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range files {
		file := filepath.Base(f)
		known := file == render.RunLog
		for _, n := range names {
			known = known || logFileOf(n) == file
		}
		if !known {
			names = append(names, strings.TrimSuffix(file, ".log"))
		}
	}
	return names
}

// logFileOf is the file holding a build's log. Build names are already
// safe file names, so render.Logs names each file after its build, but for
// a build called "run", whose log would be run.log, the run's own.
func logFileOf(build string) string {
	if build+".log" == render.RunLog {
		return strings.TrimSuffix(render.RunLog, ".log") + "-2.log"
	}
	return build + ".log"
}

func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// relToCwd shows p relative to the current directory where that is shorter.
func relToCwd(p string) string {
	cwd, err := os.Getwd()
	if err != nil {
		return p
	}
	return relTo(cwd, p)
}

func lastN(list []string, n int) []string {
	if len(list) > n {
		return list[len(list)-n:]
	}
	return list
}
