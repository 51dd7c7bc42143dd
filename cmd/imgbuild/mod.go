package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/imgbuild/imgbuild/starlark/host"
	"github.com/imgbuild/imgbuild/starlark/modules"
	"github.com/urfave/cli/v2"
)

// modCommand is imgbuild mod: the workspace's modules, as go mod is Go's.
func modCommand() *cli.Command {
	dir := func() cli.Flag {
		return &cli.StringFlag{Name: "C", Usage: "work on the workspace holding this directory instead of the current one"}
	}
	cmd := &cli.Command{
		Name:  "mod",
		Usage: "fetch, lock, update, explain, verify and vendor the modules imgbuild.mod declares",
		Subcommands: []*cli.Command{
			{
				Name:   "download",
				Usage:  "fetch every module at the version imgbuild.lock pins into the module cache, and add what the lock lacks to it",
				Flags:  []cli.Flag{dir(), lockedFlag()},
				Action: modDownload,
			},
			{
				Name:         "update",
				Usage:        "move the named modules (every module without a name) to the newest commit of their branch or tag, and write imgbuild.lock",
				ArgsUsage:    "[NAME...]",
				Flags:        []cli.Flag{dir()},
				Action:       modUpdate,
				BashComplete: lockedNames,
			},
			{
				Name:   "graph",
				Usage:  "show the modules as a tree from the workspace, each with its version and content hash",
				Flags:  []cli.Flag{dir(), lockedFlag()},
				Action: modGraph,
			},
			{
				Name:         "why",
				Usage:        "show every chain of dependencies that leads to a module",
				ArgsUsage:    "NAME",
				Flags:        []cli.Flag{dir(), lockedFlag()},
				Action:       modWhy,
				BashComplete: lockedNames,
			},
			{
				Name:   "verify",
				Usage:  "check that every module in the cache (or in third_party/imgbuild) is what imgbuild.lock says, fetching and repairing nothing",
				Flags:  []cli.Flag{dir()},
				Action: modVerify,
			},
			{
				Name:   "vendor",
				Usage:  "copy every fetched module into third_party/imgbuild/, which plan and run then read instead of the cache",
				Flags:  []cli.Flag{dir(), lockedFlag()},
				Action: modVendor,
			},
		},
	}
	addCommonFlags(cmd.Subcommands)
	return cmd
}

// lockedNames completes a module name: those imgbuild.lock holds, in the
// workspace of the current directory.
func lockedNames(c *cli.Context) {
	root, err := host.FindRoot(host.ModFile)
	if err != nil {
		return
	}
	if lock, err := modules.ReadLock(root); err == nil {
		for _, n := range lock.Names() {
			fmt.Fprintln(c.App.Writer, n)
		}
	}
}

// lockedFlag is --locked: a missing or stale imgbuild.lock is an error.
func lockedFlag() cli.Flag {
	return &cli.BoolFlag{Name: "locked", Usage: "fail when imgbuild.lock is missing or does not match imgbuild.mod, instead of resolving what it lacks (default: on when CI=true; --locked=false turns it off)"}
}

// lockedMode reads --locked, whose default is CI=true.
func lockedMode(c *cli.Context) bool {
	if c.IsSet("locked") {
		return c.Bool("locked")
	}
	return os.Getenv("CI") == "true"
}

// explainLocked adds to a stale-lock error that --locked came from
// CI=true, and how to turn it off.
func explainLocked(c *cli.Context, err error) error {
	var stale *modules.StaleLockError
	if errors.As(err, &stale) && !c.IsSet("locked") && lockedMode(c) {
		return fmt.Errorf("%w\n(--locked is on because CI=true; --locked=false turns it off)", err)
	}
	return err
}

// modRoot is the workspace -C names (the current directory by default):
// the directory holding imgbuild.mod, there or above.
func modRoot(c *cli.Context) (string, error) {
	from := c.String("C")
	if from == "" {
		from = "."
	}
	if st, err := os.Stat(from); err != nil || !st.IsDir() {
		return "", invalid(fmt.Errorf("-C %s: not a directory", from))
	}
	root, err := host.FindRoot(filepath.Join(from, host.ModFile))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, host.ModFile)); err != nil {
		abs, _ := filepath.Abs(from)
		return "", invalid(fmt.Errorf("no %s in %s or above: imgbuild mod works on a workspace's %s (write one with dep(...) lines, or give -C DIR)", host.ModFile, abs, host.ModFile))
	}
	return root, nil
}

// resolveWorkspace resolves the modules of -C's workspace with the
// default module cache, telling what it fetches on standard error.
func resolveWorkspace(c *cli.Context, opts modules.Options) (*modules.Graph, error) {
	root, err := modRoot(c)
	if err != nil {
		return nil, err
	}
	cache, err := modules.DefaultCacheDir()
	if err != nil {
		return nil, err
	}
	opts.Root, opts.Cache = root, &modules.Cache{Dir: cache}
	opts.Progress = func(msg string) { fmt.Fprintln(c.App.ErrWriter, msg) }
	g, err := modules.Resolve(c.Context, opts)
	if err != nil {
		return nil, modFailed(c, explainLocked(c, err))
	}
	return g, nil
}

// modFailed is an error of imgbuild mod: exit 1, named by the command.
func modFailed(c *cli.Context, err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: exitBuildFailed, err: fmt.Errorf("mod %s: %w", c.Command.Name, err)}
}

// writeLock writes the resolved lock when it changed, and says what
// changed (or that nothing did).
func writeLock(c *cli.Context, g *modules.Graph) error {
	changes := g.LockChanges()
	if len(changes) == 0 {
		n := len(g.Lock.Names())
		fmt.Fprintf(c.App.Writer, "%s is up to date: %d %s locked\n", modules.LockFile, n, plural(n, "module", "modules"))
		return nil
	}
	if err := modules.WriteLock(g.Root, g.Lock); err != nil {
		return modFailed(c, fmt.Errorf("writing %s: %w", modules.LockFile, err))
	}
	fmt.Fprintf(c.App.Writer, "wrote %s:\n", filepath.Join(g.Root, modules.LockFile))
	for _, ch := range changes {
		fmt.Fprintf(c.App.Writer, "  %s\n", ch)
	}
	if _, err := os.Stat(filepath.Join(g.Root, modules.VendorDir)); err == nil && c.Command.Name != "vendor" {
		fmt.Fprintf(c.App.Writer, "%s no longer matches the lock: run imgbuild mod vendor\n", modules.VendorDir)
	}
	return nil
}

func modDownload(c *cli.Context) error {
	if c.NArg() != 0 {
		return invalid(fmt.Errorf("mod download takes no arguments (imgbuild mod update NAME moves one module to a newer commit)"))
	}
	locked := lockedMode(c)
	g, err := resolveWorkspace(c, modules.Options{IgnoreVendor: true, Locked: locked})
	if err != nil {
		return err
	}
	return writeLock(c, g)
}

func modUpdate(c *cli.Context) error {
	names := c.Args().Slice()
	g, err := resolveWorkspace(c, modules.Options{IgnoreVendor: true, Update: names, UpdateAll: len(names) == 0})
	if err != nil {
		return err
	}
	return writeLock(c, g)
}

func modGraph(c *cli.Context) error {
	if c.NArg() != 0 {
		return invalid(fmt.Errorf("mod graph takes no arguments (imgbuild mod why NAME explains one module)"))
	}
	g, err := shownGraph(c)
	if err != nil {
		return err
	}
	fmt.Fprint(c.App.Writer, g.Text())
	return nil
}

func modWhy(c *cli.Context) error {
	if c.NArg() != 1 {
		return invalid(fmt.Errorf("mod why takes one module name, like imgbuild mod why platform"))
	}
	g, err := shownGraph(c)
	if err != nil {
		return err
	}
	text, err := g.WhyText(c.Args().First())
	if err != nil {
		return modFailed(c, err)
	}
	fmt.Fprint(c.App.Writer, text)
	return nil
}

// shownGraph resolves the workspace's modules for mod graph and mod why
// (as --locked says), warning when what is shown is not what the lock
// says.
func shownGraph(c *cli.Context) (*modules.Graph, error) {
	g, err := resolveWorkspace(c, modules.Options{Locked: lockedMode(c)})
	if err != nil {
		return nil, err
	}
	if changes := g.LockChanges(); len(changes) > 0 {
		fmt.Fprintf(c.App.ErrWriter, "warning: %s is not up to date with %s; shown as resolved now:\n  %s\nrun imgbuild mod download to write it\n", modules.LockFile, host.ModFile, strings.Join(changes, "\n  "))
	}
	return g, nil
}

func modVerify(c *cli.Context) error {
	if c.NArg() != 0 {
		return invalid(fmt.Errorf("mod verify takes no arguments"))
	}
	g, err := resolveWorkspace(c, modules.Options{Check: true})
	if err != nil {
		return err
	}
	lines, ok := modules.Verify(g)
	for _, l := range lines {
		fmt.Fprintln(c.App.Writer, l)
	}
	where := "the module cache"
	if g.Vendored {
		where = modules.VendorDir
	}
	if !ok {
		return &exitError{code: exitBuildFailed, err: fmt.Errorf("mod verify: modules in %s are not what %s says (see above)", where, modules.LockFile)}
	}
	fmt.Fprintf(c.App.Writer, "every module in %s is what %s says\n", where, modules.LockFile)
	return nil
}

func modVendor(c *cli.Context) error {
	if c.NArg() != 0 {
		return invalid(fmt.Errorf("mod vendor takes no arguments"))
	}
	g, err := resolveWorkspace(c, modules.Options{IgnoreVendor: true, Locked: lockedMode(c)})
	if err != nil {
		return err
	}
	if err := writeLock(c, g); err != nil {
		return err
	}
	n, err := modules.Vendor(g)
	if err != nil {
		return modFailed(c, err)
	}
	fmt.Fprintf(c.App.Writer, "vendored %d %s into %s: plan and run read them from there\n", n, plural(n, "module", "modules"), filepath.Join(g.Root, modules.VendorDir))
	return nil
}

// modDocNames are the names imgbuild docs shows modDocs for.
var modDocNames = []string{"imgbuild.mod", "mod", "dep", "module", "imgbuild.lock"}

// modDocs is imgbuild docs imgbuild.mod: what an imgbuild.mod declares,
// the lock, and the mod commands.
const modDocs = `imgbuild.mod: the workspace's (or a module's) declarations

  module(name = "platform")
      The module's own name: what every module that depends on it knows
      it by (@platform//...), whatever each calls it.
  dep(name, git = URL, ref = TAG|BRANCH|COMMIT, path = SUBDIR)
      A module in a git repository, fetched with the git binary (your SSH
      keys, agent, credential helpers and url.<base>.insteadOf rules apply;
      the URL reaches git as written: https://..., ssh://...,
      git@host:org/repo, a local path). path is the module's directory in
      the repository ("" for its top).
  dep(name, url = "https://.../x.tar.gz", sha256 = HEX, path = SUBDIR)
      A module in a tar archive (gzipped or not), checked against sha256.
  dep(name, path = DIR)
      A directory on disk, relative to this imgbuild.mod; not locked.
  state(location = "s3://bucket/prefix")
      Where the builds are recorded (the workspace's imgbuild.mod only).

  A description loads a module's files as load("@name//file.star", ...).
  Each module's imgbuild.mod declares its own dependencies, by its own
  names. One module wanted at two versions, or modules depending on each
  other in a ring, are errors that show the paths.

imgbuild.lock: the commit each ref resolved to and the content hash of each
  fetched module (sha256 over its tree). Commit it. validate, plan and run
  use the locked versions and check the hashes; what the lock lacks is
  resolved for that run with a warning, or is an error with --locked (on
  by default when CI=true). The module cache is ~/.cache/imgbuild/modules
  (IMGBUILD_MODULE_CACHE moves it), keyed by commit: after a download,
  runs are offline. third_party/imgbuild/, when present, is read instead.

imgbuild mod download          fetch every module; write what the lock lacks
imgbuild mod update [NAME...]  move modules to the newest commit of their ref
imgbuild mod graph             the modules as a tree with versions and hashes
imgbuild mod why NAME          every chain of dependencies leading to NAME
imgbuild mod verify            check the cache (or vendor directory) against the lock
imgbuild mod vendor            copy the modules into third_party/imgbuild/
  (each takes -C DIR for another workspace)
`
