package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/builtins"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/starlark/description"
	"github.com/imgbuild/imgbuild/starlark/host"
	"github.com/urfave/cli/v2"
)

// descriptionFlags are the flags of validate, plan and run.
func descriptionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "var", Usage: "set a variable: --var name=value (repeatable)"},
		&cli.StringSliceFlag{Name: "var-file", Usage: "read variables from a Packer-style .pkrvars.hcl, a JSON file or a .star file of plain assignments (repeatable)"},
		&cli.BoolFlag{Name: "strict-vars", Usage: "make a var-file's variable that the description does not declare an error (default: a warning)"},
		&cli.StringSliceFlag{Name: "only", Usage: "build only these builds (names or globs, comma-separated or repeated); the builds they depend on come along"},
		&cli.StringSliceFlag{Name: "except", Usage: "skip these builds (names or globs)"},
		&cli.StringFlag{Name: "max-memory", Value: "2GiB", EnvVars: []string{"IMGBUILD_MAX_MEMORY"}, Usage: "the memory evaluating the description may hold (\"512MiB\", \"4G\")"},
		&cli.Uint64Flag{Name: "max-steps", Value: host.DefaultMaxSteps, EnvVars: []string{"IMGBUILD_MAX_STEPS"}, Usage: "the Starlark steps evaluating the description may take, all its modules together"},
		lockedFlag(),
	}
}

// evalLimits reads --max-memory and --max-steps.
func evalLimits(c *cli.Context) (memory, steps uint64, err error) {
	n, err := qemuimg.ParseSize(c.String("max-memory"))
	if err != nil {
		return 0, 0, fmt.Errorf("--max-memory: %v", err)
	}
	if n < 1<<20 {
		return 0, 0, fmt.Errorf("--max-memory %s: want at least 1MiB", c.String("max-memory"))
	}
	if c.Uint64("max-steps") == 0 {
		return 0, 0, fmt.Errorf("--max-steps 0: want at least 1")
	}
	return uint64(n), c.Uint64("max-steps"), nil
}

// readVars gathers --var-file and --var values; --var wins over files, and
// later files over earlier ones.
func readVars(varFiles, sets []string) (map[string]builtins.VarValue, error) {
	vars := map[string]builtins.VarValue{}
	for _, f := range varFiles {
		got, err := builtins.ReadVarFile(f)
		if err != nil {
			return nil, err
		}
		for k, v := range got {
			vars[k] = v
		}
	}
	for _, kv := range sets {
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
	file, err := descriptionArg(c)
	if err != nil {
		return nil, err
	}
	if plan, err := isPlanFile(file); err != nil || plan {
		if err == nil {
			err = fmt.Errorf("%s is a plan saved by imgbuild plan -out: run it with imgbuild run %s (%s takes a description)", file, file, c.Command.Name)
		}
		return nil, invalid(err)
	}
	return evaluate(c, file, inputsOf(c))
}

// withDescription is the action of a command over a description: it
// loads the one its argument names (loadDescription) and runs run on it.
func withDescription(run func(c *cli.Context, d *description.Description) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		d, err := loadDescription(c)
		if err != nil {
			return err
		}
		return run(c, d)
	}
}

// descriptionArg is the description the command's one argument names.
func descriptionArg(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", invalid(fmt.Errorf("%s takes one description file or directory, like imgbuild %s images.star", c.Command.Name, c.Command.Name))
	}
	file, err := descriptionFile(c.Args().First())
	if err != nil {
		return "", invalid(err)
	}
	return file, nil
}

// inputs are what a description is evaluated with besides its files: the
// flags, or what a saved plan was made with.
type inputs struct {
	varFiles, vars, only, except []string
	strictVars                   bool
}

// inputsOf reads the inputs from the command's flags.
func inputsOf(c *cli.Context) inputs {
	return inputs{
		varFiles: c.StringSlice("var-file"), vars: c.StringSlice("var"),
		only: splitList(c.StringSlice("only")), except: splitList(c.StringSlice("except")),
		strictVars: c.Bool("strict-vars"),
	}
}

// evaluate loads file with in and applies its selection.
func evaluate(c *cli.Context, file string, in inputs) (*description.Description, error) {
	vars, err := readVars(in.varFiles, in.vars)
	if err != nil {
		return nil, invalid(err)
	}
	maxMemory, maxSteps, err := evalLimits(c)
	if err != nil {
		return nil, invalid(err)
	}
	slog.Debug("loading the description", "file", file, "vars", len(vars))
	start := time.Now()
	d, err := description.Load(description.Options{
		File:      file,
		Registry:  registry(),
		Vars:      vars,
		Getenv:    os.LookupEnv,
		MaxMemory: maxMemory,
		MaxSteps:  maxSteps,
		Print: func(pos, msg string) {
			fmt.Fprintf(c.App.ErrWriter, "%s: %s\n", pos, msg)
		},
		Warn: func(msg string) {
			fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", msg)
		},
		StrictVars: in.strictVars,
		Locked:     lockedMode(c),
		Context:    c.Context,
		Progress: func(msg string) {
			fmt.Fprintln(c.App.ErrWriter, msg)
		},
	})
	if err != nil {
		annotateInvalid(c.App.Writer, file, err)
		return nil, invalid(explainLocked(c, err))
	}
	slog.Debug("description loaded", "root", d.Root, "file", d.File, "builds", len(d.Graph.Nodes), "modules", d.Modules, "took", time.Since(start))
	g, err := d.Graph.Select(in.only, in.except)
	if err != nil {
		return nil, invalid(err)
	}
	d.Graph = g
	return d, nil
}

// DefaultFile is the description imgbuild run DIR reads, as packer build .
// reads the directory's templates.
const DefaultFile = "images.star"

// descriptionFile is the description an argument names: the file itself,
// or DIR/images.star for a directory. When that is absent, the error lists
// the directory's .star files.
func descriptionFile(arg string) (string, error) {
	st, err := os.Stat(arg)
	if err != nil {
		return "", fmt.Errorf("cannot read the description: %v", err)
	}
	if !st.IsDir() {
		return arg, nil
	}
	file := filepath.Join(arg, DefaultFile)
	if _, err := os.Stat(file); err == nil {
		return file, nil
	}
	stars, _ := filepath.Glob(filepath.Join(arg, "*.star"))
	msg := fmt.Sprintf("%s is a directory without %s", arg, DefaultFile)
	if len(stars) == 0 {
		return "", fmt.Errorf("%s, and it holds no .star file", msg)
	}
	for i, s := range stars {
		stars[i] = filepath.Base(s)
	}
	return "", fmt.Errorf("%s; name one of its descriptions: %s", msg, strings.Join(stars, ", "))
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
