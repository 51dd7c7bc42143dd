package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/imgbuild/imgbuild/builtins"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/starlark/description"
	"github.com/imgbuild/imgbuild/stdlib"
	"github.com/urfave/cli/v2"
)

func validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check a description: keywords, types, files, variables, the graph",
		ArgsUsage: "FILE|DIR",
		Flags:     descriptionFlags(),
		Action: withDescription(func(c *cli.Context, d *description.Description) error {
			n := len(d.Graph.Nodes)
			fmt.Fprintf(c.App.Writer, "%s is valid: %d %s in %d %s\n", d.File, n, plural(n, "build", "builds"), len(d.Graph.Waves()), plural(len(d.Graph.Waves()), "wave", "waves"))
			return nil
		}),
	}
}

func planCommand() *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "show what would be built, in which order, and why (a dry run)",
		ArgsUsage: "FILE|DIR",
		Description: "-out PLAN also saves the plan, for imgbuild run PLAN: it holds the builds and their order,\n" +
			"and fingerprints of the description's files, the var files, every variable and each build's\n" +
			"inputs (sensitive values only as keyed digests; run-time values as deferred).",
		Flags: append(append(descriptionFlags(), stateFlags()...),
			&cli.BoolFlag{Name: "json", Usage: "print the plan as JSON"},
			&cli.BoolFlag{Name: "dot", Usage: "print the plan as a Graphviz digraph"},
			&cli.StringFlag{Name: "out", Usage: "save the plan to this file (JSON) for imgbuild run FILE, which runs exactly these builds in this order, and refuses to when the description, a file it reads or a variable changed since (sensitive values are saved only as keyed digests)"},
			&cli.BoolFlag{Name: "refresh", Usage: "resolve every build's lookups (such as aws_ami) read-only and show what they find; --refresh=false checks nothing over the network: lookups unresolved, artifacts unchecked (default: what is needed to mark builds that were built before)"},
		),
		Action: withDescription(func(c *cli.Context, d *description.Description) (err error) {
			if c.Bool("json") && c.Bool("dot") {
				return invalid(fmt.Errorf("--json and --dot are exclusive: pick one"))
			}
			reg := registry()
			plan := engine.MakePlan(d.Graph, reg, d.Root)
			plan.Variables = d.Variables
			if err := markPlan(c, d, plan); err != nil {
				return err
			}
			if c.String("out") != "" {
				defer func() {
					if err == nil {
						err = savePlan(c, d, inputsOf(c), plan)
					}
				}()
			}
			switch {
			case c.Bool("json"):
				return plan.WriteJSON(c.App.Writer)
			case c.Bool("dot"):
				return plan.WriteDot(c.App.Writer)
			}
			if err := plan.WriteText(c.App.Writer); err != nil {
				return err
			}
			if len(d.Variables) > 0 {
				fmt.Fprintf(c.App.Writer, "\nVariables:\n")
				for _, v := range d.Variables {
					line := fmt.Sprintf("  %s = %s", v.Name, v.Value)
					if shown := v.Shown(); shown != "" {
						line += "  " + shown
					}
					if v.Description != "" {
						line += "  # " + v.Description
					}
					fmt.Fprintln(c.App.Writer, line)
				}
			}
			return nil
		}),
	}
}

func docsCommand() *cli.Command {
	return &cli.Command{
		Name:      "docs",
		Usage:     "show the reference of every builtin, or of one",
		ArgsUsage: "[BUILTIN]",
		Action: func(c *cli.Context) error {
			reg := registry()
			fns, ferr := stdlib.Functions()
			if ferr != nil {
				return ferr
			}
			if c.NArg() == 0 {
				fmt.Fprint(c.App.Writer, builtins.Index(reg))
				fmt.Fprint(c.App.Writer, stdlibIndex(fns))
				fmt.Fprint(c.App.Writer, "\nModules shared across teams (dep, module, the lock, imgbuild mod): imgbuild docs imgbuild.mod\n")
				fmt.Fprint(c.App.Writer, "Saved plans (plan -out, run PLAN, the plan file): imgbuild docs plan-file\n")
				return nil
			}
			for i, name := range c.Args().Slice() {
				text, err := builtins.Docs(reg, name)
				switch {
				case name == "import":
					text, err = importDocs(reg), nil
				case slices.Contains(modDocNames, name) && err != nil:
					text, err = modDocs, nil
				case slices.Contains(planDocNames, name) && err != nil:
					text, err = planDocs, nil
				}
				if err != nil {
					if t, ok := stdlibDocs(fns, name); ok {
						text, err = t, nil
					}
				}
				if err != nil {
					return invalid(err)
				}
				if i > 0 {
					fmt.Fprintln(c.App.Writer)
				}
				fmt.Fprint(c.App.Writer, text)
			}
			return nil
		},
		BashComplete: func(c *cli.Context) {
			for _, n := range append(registry().Names(), builtins.OtherBuiltins...) {
				fmt.Fprintln(c.App.Writer, n)
			}
			fns, _ := stdlib.Functions()
			for _, f := range fns {
				fmt.Fprintln(c.App.Writer, f.Name)
			}
		},
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// markPlan compares the plan's builds with their records: new, up to date
// or to rebuild, and why.
func markPlan(c *cli.Context, d *description.Description, plan *engine.Plan) error {
	store, fp, err := openState(c, d)
	if err != nil {
		return err
	}
	records, err := store.Load(c.Context)
	if err != nil {
		return &exitError{code: exitBuildFailed, err: fmt.Errorf("plan: reading the state in %s: %w", store.Where(), err)}
	}
	noRefresh := c.IsSet("refresh") && !c.Bool("refresh")
	a := &engine.Assessor{Graph: d.Graph, Fingerprinter: fp, Records: records, NoVerify: noRefresh, AllLookups: c.Bool("refresh")}
	marks := a.Assess(c.Context)
	for _, name := range d.Graph.Names() {
		if err := marks[name].Err; err != nil {
			what := "plan"
			if c.Bool("refresh") {
				what = "plan --refresh"
			}
			return &exitError{code: exitBuildFailed, err: fmt.Errorf("%s: %w", what, err)}
		}
	}
	plan.SetMarks(marks)
	return nil
}

// stdlibIndex lists the standard library's functions for imgbuild docs.
func stdlibIndex(fns []stdlib.Function) string {
	var b strings.Builder
	b.WriteString("\nStandard library (load(\"@stdlib//MODULE\", \"NAME\")):\n")
	for _, f := range fns {
		first, _, _ := strings.Cut(f.Doc, "\n")
		fmt.Fprintf(&b, "  %-20s %s  (%s)\n", f.Name, first, f.Module)
	}
	return b.String()
}

// stdlibDocs is imgbuild docs NAME for a standard library function, or for
// a module ("apt.star", "@stdlib//apt.star"): its functions' signatures and
// docstrings.
func stdlibDocs(fns []stdlib.Function, name string) (string, bool) {
	module := name
	if !strings.HasPrefix(module, "@stdlib//") {
		module = "@stdlib//" + module
	}
	var b strings.Builder
	if doc, ok := stdlib.ModuleDoc(module); ok && doc != "" {
		fmt.Fprintf(&b, "%s\n", module)
		for _, l := range strings.Split(doc, "\n") {
			b.WriteString(strings.TrimRight("  "+l, " ") + "\n")
		}
	}
	for _, f := range fns {
		if f.Name != name && f.Module != module {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s\n  load(%q, %q)\n\n", f.Signature, f.Module, f.Name)
		for _, l := range strings.Split(f.Doc, "\n") {
			b.WriteString(strings.TrimRight("  "+l, " ") + "\n")
		}
	}
	return b.String(), b.Len() > 0
}
