package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/journal"
	"github.com/imgbuild/imgbuild/starlark/host"
	"github.com/urfave/cli/v2"
)

func cleanupCommand() *cli.Command {
	return &cli.Command{
		Name:  "cleanup",
		Usage: "remove what runs that were killed left behind (scratch directories, processes, cloud resources)",
		Description: "Every run records what its builds create in .imgbuild/journal before creating it. A run killed\n" +
			"before it could clean up (kill -9, a crash, a second Ctrl-C) leaves its journal: cleanup finds what it\n" +
			"lists and removes it. The next run does the same when it starts, except for what --on-error=abort kept.",
		ArgsUsage: "[FILE|DIR]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Usage: "list what would be removed, and remove nothing"},
		},
		Action: cleanupAction,
	}
}

func cleanupAction(c *cli.Context) error {
	if c.NArg() > 1 {
		return invalid(fmt.Errorf("cleanup takes at most one description file or workspace directory, like imgbuild cleanup ."))
	}
	root, err := workspaceOf(c.Args().First())
	if err != nil {
		return invalid(err)
	}
	dry := c.Bool("dry-run")
	reaped, err := engine.Reap(c.Context, registry(), journal.Dir(root), engine.ReapOptions{DryRun: dry, Kept: true})
	if err != nil {
		return &exitError{code: exitBuildFailed, err: err}
	}
	if _, failed := reportReaped(c.App.Writer, reaped, dry); failed > 0 {
		return &exitError{code: exitBuildFailed, err: fmt.Errorf("%d of what dead runs left could not be removed: see above", failed)}
	}
	return nil
}

// workspaceOf is the workspace root of a description file or a directory
// ("" is the current one), as run finds it.
func workspaceOf(arg string) (string, error) {
	if arg == "" {
		arg = "."
	}
	fi, err := os.Stat(arg)
	if err != nil {
		return "", fmt.Errorf("cleanup %s: %v", arg, err)
	}
	if fi.IsDir() {
		arg = filepath.Join(arg, "images.star") // FindRoot looks from a file's directory
	}
	return host.FindRoot(arg)
}

// reportReaped prints what Reap did, one line for each thing found, and
// returns how many things were (or would be) removed and how many entries
// failed.
func reportReaped(w io.Writer, reaped []engine.Reaped, dry bool) (n, failed int) {
	run := ""
	for _, r := range reaped {
		if len(r.Found) == 0 && r.Err == nil {
			continue // already gone
		}
		if r.Run != run {
			run = r.Run
			fmt.Fprintf(w, "run %s left:\n", run)
		}
		who := ""
		if r.Entry.Build != "" {
			who = r.Entry.Build + ": "
		}
		verdict := reapVerdict(r, dry)
		if r.Err != nil {
			failed++
		} else if !r.Kept {
			n += max(len(r.Found), 1)
		}
		for _, f := range r.Found {
			fmt.Fprintf(w, "  %s%s: %s\n", who, f, verdict)
		}
		if len(r.Found) == 0 {
			fmt.Fprintf(w, "  %s%s: %s\n", who, r.Entry.What, verdict)
		}
	}
	switch {
	case n == 0 && failed == 0:
		fmt.Fprintln(w, "nothing is left by runs that died")
	case dry:
		fmt.Fprintf(w, "%d %s would be removed (imgbuild cleanup removes %s)\n", n, plural(n, "thing", "things"), plural(n, "it", "them"))
	}
	return n, failed
}

func reapVerdict(r engine.Reaped, dry bool) string {
	switch {
	case r.Err != nil:
		return "NOT removed: " + r.Err.Error()
	case r.Kept:
		return "kept for debugging (--on-error=abort): imgbuild cleanup removes it"
	case dry:
		return "would be removed"
	}
	return "removed"
}

// startJournal begins the run's journal, marks the processes the run will
// start with its id, and removes what runs that died left (but what they
// kept on purpose), saying so through say. The caller closes the journal.
func startJournal(c *cli.Context, root string, say func(warn bool, text string)) (*journal.Journal, func(), error) {
	jr, err := journal.Begin(journal.Dir(root), time.Now())
	if err != nil {
		return nil, nil, err
	}
	marker := journal.EnvVar + "=" + jr.ID()
	if _, err := jr.Record(journal.Entry{Kind: journal.KindProcesses, What: "processes of run " + jr.ID(), Where: map[string]string{"env": marker}}); err != nil {
		jr.Close(false)
		return nil, nil, err
	}
	old, had := os.LookupEnv(journal.EnvVar)
	os.Setenv(journal.EnvVar, jr.ID())
	restore := func() {
		if had {
			os.Setenv(journal.EnvVar, old)
		} else {
			os.Unsetenv(journal.EnvVar)
		}
	}
	reaped, err := engine.Reap(c.Context, registry(), journal.Dir(root), engine.ReapOptions{})
	if err != nil {
		say(true, "could not look for what runs that died left: "+err.Error())
	}
	var b strings.Builder
	if n, failed := reportReaped(&b, reaped, false); n+failed > 0 || strings.Contains(b.String(), "kept for debugging") {
		for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
			say(failed > 0, "cleanup: "+l)
		}
	}
	return jr, restore, nil
}
