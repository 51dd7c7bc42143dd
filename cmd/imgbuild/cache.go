package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/rootfs/checkpoint"
)

// cacheCommand shows and trims the checkpoint cache: the debootstrapped
// trees rootfs() builds reuse.
func cacheCommand() *cli.Command {
	return &cli.Command{
		Name:  "cache",
		Usage: "list or prune the checkpoints: the debootstrapped trees rootfs() reuses ($" + checkpoint.DirEnv + ", bounded by $" + checkpoint.MaxSizeEnv + ")",
		Subcommands: []*cli.Command{
			{
				Name:  "ls",
				Usage: "list the checkpoints, most recently used first: what each was made from, its size, when it was made and last used",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the checkpoints as JSON"}},
				Action: func(c *cli.Context) error {
					if c.NArg() > 0 {
						return invalid(fmt.Errorf("cache ls takes no arguments (got %s)", strings.Join(c.Args().Slice(), " ")))
					}
					cache, entries, err := checkpoints(c)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return writeCheckpointsJSON(c.App.Writer, cache, entries)
					}
					return writeCheckpoints(c.App.Writer, cache, entries)
				},
			},
			{
				Name:  "prune",
				Usage: "remove checkpoints: --all, those not used for --older-than (30d, 36h), the least recently used beyond --max-size (5G); damaged ones always",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "all", Usage: "remove every checkpoint"},
					&cli.StringFlag{Name: "older-than", Usage: "remove the checkpoints not used for this long: 30d, 36h, 90m"},
					&cli.StringFlag{Name: "max-size", Usage: "remove the least recently used checkpoints until the rest take at most this: 5G, 500M"},
				},
				Action: pruneAction,
			},
		},
	}
}

// checkpoints opens the cache and lists it.
func checkpoints(c *cli.Context) (*checkpoint.Cache, []*checkpoint.Entry, error) {
	cache, err := checkpoint.Open()
	if err != nil {
		return nil, nil, invalid(err)
	}
	entries, err := cache.List(c.Context)
	if err != nil {
		return nil, nil, err
	}
	return cache, entries, nil
}

func pruneAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return invalid(fmt.Errorf("cache prune takes no arguments (got %s): say what to remove with --all, --older-than or --max-size", strings.Join(c.Args().Slice(), " ")))
	}
	var opts checkpoint.PruneOptions
	opts.All = c.Bool("all")
	if s := c.String("older-than"); c.IsSet("older-than") {
		d, err := checkpoint.ParseAge(s)
		if err != nil {
			return invalid(fmt.Errorf("--older-than: %v", err))
		}
		opts.OlderThan = d
	}
	if s := c.String("max-size"); c.IsSet("max-size") {
		n, err := qemuimg.ParseSize(s)
		if err != nil {
			return invalid(fmt.Errorf("--max-size: %v", err))
		}
		if n == 0 {
			return invalid(fmt.Errorf("--max-size 0 would remove every checkpoint: say --all"))
		}
		opts.MaxSize = n
	}
	switch {
	case !opts.All && opts.OlderThan == 0 && opts.MaxSize == 0:
		return invalid(fmt.Errorf("cache prune: say what to remove: --all, --older-than 30d (not used for 30 days) or --max-size 5G (the least recently used beyond 5 GiB)"))
	case opts.All && (opts.OlderThan > 0 || opts.MaxSize > 0):
		return invalid(fmt.Errorf("cache prune: --all removes every checkpoint: give it alone, or --older-than and --max-size without it"))
	}
	cache, err := checkpoint.Open()
	if err != nil {
		return invalid(err)
	}
	removed, err := cache.Prune(c.Context, opts)
	w := c.App.Writer
	var freed int64
	for _, e := range removed {
		freed += e.Size
		if e.Problem != "" {
			fmt.Fprintf(w, "removed %s: damaged (it %s)\n", e.ID, e.Problem)
			continue
		}
		fmt.Fprintf(w, "removed %s (%s, last used %s)\n", e.ID, checkpoint.Human(e.Size), e.LastUsed.Local().Format(timeLayout))
	}
	if err != nil {
		return err
	}
	left, err := cache.List(c.Context)
	if err != nil {
		return err
	}
	rest := fmt.Sprintf("%d %s (%s) in %s", len(left), plural(len(left), "checkpoint", "checkpoints"), checkpoint.Human(totalSize(left)), cache.Dir)
	if len(removed) == 0 {
		fmt.Fprintf(w, "nothing to remove: %s\n", rest)
		return nil
	}
	fmt.Fprintf(w, "removed %d %s (%s); left: %s\n", len(removed), plural(len(removed), "checkpoint", "checkpoints"), checkpoint.Human(freed), rest)
	return nil
}

const timeLayout = "2006-01-02 15:04"

func totalSize(entries []*checkpoint.Entry) int64 {
	var n int64
	for _, e := range entries {
		n += e.Size
	}
	return n
}

// writeCheckpoints writes the checkpoints as a table, then their total
// against the bound.
func writeCheckpoints(w io.Writer, cache *checkpoint.Cache, entries []*checkpoint.Entry) error {
	if len(entries) == 0 {
		_, err := fmt.Fprintf(w, "no checkpoints in %s: rootfs() builds keep one when they debootstrap\n", cache.Dir)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECKPOINT\tSIZE\tCREATED\tLAST USED\tMADE FROM")
	for _, e := range entries {
		if e.Problem != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tdamaged (it %s; cache prune removes it)\n", e.ID, e.Problem)
			continue
		}
		k := e.Key
		from := fmt.Sprintf("%s %s from %s (%s), %s", k.Suite, k.Variant, k.Mirror, strings.Join(k.Components, ","), k.Arch)
		if len(k.Packages) > 0 {
			from += ", packages " + strings.Join(k.Packages, " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.ID, checkpoint.Human(e.Size), e.Created.Local().Format(timeLayout), e.LastUsed.Local().Format(timeLayout), from)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d %s, %s of %s in %s\n", len(entries), plural(len(entries), "checkpoint", "checkpoints"), checkpoint.Human(totalSize(entries)), checkpoint.Human(cache.MaxSize), cache.Dir)
	return err
}

// checkpointJSON is one checkpoint as cache ls --json writes it.
type checkpointJSON struct {
	ID          string          `json:"id"`
	Key         *checkpoint.Key `json:"key,omitempty"`
	Archive     string          `json:"archive,omitempty"`
	ArchiveDate string          `json:"archive_date,omitempty"`
	Hash        string          `json:"hash,omitempty"`
	Size        int64           `json:"size"`
	Created     *time.Time      `json:"created,omitempty"`
	LastUsed    *time.Time      `json:"last_used,omitempty"`
	Problem     string          `json:"problem,omitempty"`
}

func writeCheckpointsJSON(w io.Writer, cache *checkpoint.Cache, entries []*checkpoint.Entry) error {
	out := struct {
		Dir         string           `json:"dir"`
		MaxSize     int64            `json:"max_size"`
		Checkpoints []checkpointJSON `json:"checkpoints"`
	}{Dir: cache.Dir, MaxSize: cache.MaxSize, Checkpoints: []checkpointJSON{}}
	for _, e := range entries {
		j := checkpointJSON{ID: e.ID, Problem: e.Problem}
		if e.Problem == "" {
			j.Key, j.Archive, j.ArchiveDate, j.Hash, j.Size = &e.Key, e.Archive, e.ArchiveDate, e.Hash, e.Size
			created, used := e.Created, e.LastUsed
			j.Created, j.LastUsed = &created, &used
		}
		out.Checkpoints = append(out.Checkpoints, j)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
