package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/imgbuild/imgbuild/builtins"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/value"
	"github.com/imgbuild/imgbuild/starlark/description"
	"github.com/urfave/cli/v2"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show a description's variables (secrets hidden), builds, their outputs and what each consumes",
		ArgsUsage: "FILE|DIR",
		Flags:     append(descriptionFlags(), &cli.BoolFlag{Name: "json", Usage: "print it as JSON"}),
		Action: withDescription(func(c *cli.Context, d *description.Description) error {
			in := inspectionOf(d)
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(in)
			}
			return in.write(c.App.Writer)
		}),
	}
}

// inspection is what inspect shows, as Packer's inspect does for a
// template.
type inspection struct {
	File      string          `json:"file"`
	Workspace string          `json:"workspace"`
	Variables any             `json:"variables"`
	Builds    []inspectedNode `json:"builds"`
	Modules   []string        `json:"modules"`
}

type inspectedNode struct {
	Name           string        `json:"name"`
	Driver         string        `json:"driver"`
	Pos            string        `json:"position"`
	Outputs        []string      `json:"outputs"`
	Consumes       []engine.Edge `json:"consumes"`
	Provisioners   []string      `json:"provisioners"`
	ErrorCleanup   []string      `json:"error_cleanup,omitempty"`
	Tests          []string      `json:"tests,omitempty"` // the tests' names
	PostProcessors []string      `json:"post_processors"`
}

func inspectionOf(d *description.Description) *inspection {
	reg := registry()
	in := &inspection{File: d.File, Workspace: relToCwd(d.Root), Variables: d.Variables, Modules: d.Modules, Builds: []inspectedNode{}}
	if d.Variables == nil {
		in.Variables = []struct{}{}
	}
	kinds := func(objs []*value.Object) []string {
		out := []string{}
		for _, o := range objs {
			out = append(out, o.Kind)
		}
		return out
	}
	for _, n := range d.Graph.Nodes {
		b := inspectedNode{Name: n.Name, Driver: n.Driver, Pos: n.Pos, Outputs: []string{}, Consumes: d.Graph.Edges(n),
			Provisioners: kinds(n.Provisioners), ErrorCleanup: kinds(n.ErrorCleanup), PostProcessors: kinds(n.PostProcessors)}
		if len(b.ErrorCleanup) == 0 {
			b.ErrorCleanup = nil
		}
		if len(n.Tests) > 0 {
			b.Tests = engine.TestNames(n.Tests, d.Root)
		}
		if b.Consumes == nil {
			b.Consumes = []engine.Edge{}
		}
		b.Outputs = append(b.Outputs, reg.OutputsOf(n).Names()...)
		in.Builds = append(in.Builds, b)
	}
	return in
}

func (in *inspection) write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Description: %s (workspace %s)\n", in.File, in.Workspace)
	vars, _ := in.Variables.([]builtins.Variable)
	b.WriteString("\nVariables:\n")
	if len(vars) == 0 {
		b.WriteString("  <none>\n")
	}
	for _, v := range vars {
		line := fmt.Sprintf("  %s = %s", v.Name, v.Value)
		if shown := v.Shown(); shown != "" {
			line += "  " + shown
		}
		if v.Description != "" {
			line += "  # " + v.Description
		}
		b.WriteString(line + "\n")
	}
	b.WriteString("\nBuilds:\n")
	for _, n := range in.Builds {
		fmt.Fprintf(&b, "  %s (%s) at %s\n", n.Name, n.Driver, n.Pos)
		fmt.Fprintf(&b, "    outputs:  %s\n", strings.Join(n.Outputs, ", "))
		if len(n.Consumes) == 0 {
			b.WriteString("    consumes: nothing\n")
		}
		for i, e := range n.Consumes {
			label := "          "
			if i == 0 {
				label = "consumes: "
			}
			fmt.Fprintf(&b, "    %s%s\n", label, e.Via)
		}
		list := func(name string, l []string) {
			if len(l) > 0 {
				fmt.Fprintf(&b, "    %s %s\n", name, strings.Join(l, ", "))
			}
		}
		list("provisioners:   ", n.Provisioners)
		list("error_cleanup:  ", n.ErrorCleanup)
		list("tests:          ", n.Tests)
		list("post-processors:", n.PostProcessors)
	}
	if len(in.Modules) > 1 {
		fmt.Fprintf(&b, "\nModules loaded: %s\n", strings.Join(in.Modules, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
