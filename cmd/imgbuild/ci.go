package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/imgbuild/imgbuild/starlark/description"
	"github.com/urfave/cli/v2"
)

// ciCommand writes CI pipelines from the build graph: beyond one machine,
// the CI system is the distributed engine. Each build is a job running
// imgbuild run --only NAME against shared state; the graph's edges are the
// jobs' needs.
func ciCommand() *cli.Command {
	flags := append(append(descriptionFlags(), stateFlags()...),
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the pipeline to this file (default: standard output)"},
		&cli.StringFlag{Name: "runs-on", Value: "ubuntu-latest", Usage: "the runner every job runs on (GitHub runs-on, GitLab tags)"},
		&cli.StringFlag{Name: "imgbuild", Value: "imgbuild", Usage: "the imgbuild command the jobs run"},
	)
	return &cli.Command{
		Name:  "ci",
		Usage: "write a CI pipeline with one job per build, needs from the graph, and shared state",
		Subcommands: []*cli.Command{
			{Name: "github", Usage: "write a GitHub Actions workflow", ArgsUsage: "FILE|DIR", Flags: flags, Action: ciAction(githubWorkflow)},
			{Name: "gitlab", Usage: "write a GitLab CI pipeline (.gitlab-ci.yml)", ArgsUsage: "FILE|DIR", Flags: flags, Action: ciAction(gitlabPipeline)},
		},
	}
}

// ciJob is one build as a CI job.
type ciJob struct {
	ID    string   // the job's id, safe for the CI system
	Build string   // the build's name
	Needs []string // ids of the jobs it needs
}

// pipeline is what a CI writer needs.
type pipeline struct {
	Name   string // the workflow's name
	File   string // the description, relative to the repository's root
	State  string
	RunsOn string
	// Tagged says the runner was chosen (--runs-on): GitLab jobs then
	// carry it as their tag.
	Tagged  bool
	Command string
	Jobs    []ciJob
}

func ciAction(write func(*pipeline) string) cli.ActionFunc {
	return withDescription(func(c *cli.Context, d *description.Description) error {
		state := d.State
		if c.IsSet("state") {
			state = c.String("state")
		}
		if !strings.Contains(state, "://") {
			return invalid(fmt.Errorf("ci %s: the jobs run on different machines, so they need shared state: give --state s3://bucket/prefix, or state(location = ...) in %s", c.Command.Name, filepath.Join(d.Root, "imgbuild.mod")))
		}
		p := &pipeline{Name: "images: " + d.File, File: d.File, State: state, RunsOn: c.String("runs-on"), Tagged: c.IsSet("runs-on"), Command: c.String("imgbuild"), Jobs: ciJobs(d)}
		text := write(p)
		if out := c.String("output"); out != "" {
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			return os.WriteFile(out, []byte(text), 0o644)
		}
		_, err := fmt.Fprint(c.App.Writer, text)
		return err
	})
}

var unsafeJobID = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// ciJobs makes a job per build, in the graph's order, with ids that start
// with a letter or _ and hold only letters, digits, - and _ (GitHub's
// rule), unique.
func ciJobs(d *description.Description) []ciJob {
	ids := map[string]string{}
	taken := map[string]bool{}
	for _, n := range d.Graph.Nodes {
		id := unsafeJobID.ReplaceAllString(n.Name, "_")
		if id[0] >= '0' && id[0] <= '9' || id[0] == '-' {
			id = "_" + id
		}
		for base, i := id, 2; taken[id]; i++ {
			id = fmt.Sprintf("%s_%d", base, i)
		}
		taken[id] = true
		ids[n.Name] = id
	}
	var jobs []ciJob
	for _, n := range d.Graph.Nodes {
		j := ciJob{ID: ids[n.Name], Build: n.Name, Needs: []string{}}
		for _, dep := range d.Graph.Deps(n) {
			j.Needs = append(j.Needs, ids[dep])
		}
		jobs = append(jobs, j)
	}
	return jobs
}

// q quotes a string for YAML (a JSON string is a YAML string).
func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func needsList(needs []string) string {
	return "[" + strings.Join(needs, ", ") + "]"
}

// runLine is the command a build's job runs.
func (p *pipeline) runLine(j ciJob) string {
	return fmt.Sprintf("%s run --only %s --state \"$IMGBUILD_STATE\" %s", p.Command, shellWord(j.Build), shellWord(p.File))
}

// shellWord quotes s for the shell when it needs it.
func shellWord(s string) string {
	if regexp.MustCompile(`^[A-Za-z0-9_./=-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

const ciHeader = `# Written by imgbuild ci from %s: one job per build, needs from the build
# graph. Each job runs only its build (the builds it needs are up to date in
# the shared state by then, and are reused). Give the jobs the same
# IMGBUILD_FINGERPRINT_KEY secret, so that builds with secrets are compared
# alike, and credentials for the state bucket and the clouds the builds use.
`

// githubWorkflow writes a GitHub Actions workflow.
func githubWorkflow(p *pipeline) string {
	var b strings.Builder
	fmt.Fprintf(&b, ciHeader, p.File)
	fmt.Fprintf(&b, "name: %s\non:\n  push:\n  workflow_dispatch:\nconcurrency:\n  group: %s\n  cancel-in-progress: false\nenv:\n  IMGBUILD_STATE: %s\n  IMGBUILD_FINGERPRINT_KEY: ${{ secrets.IMGBUILD_FINGERPRINT_KEY }}\njobs:\n", q(p.Name), q("imgbuild-"+p.File), q(p.State))
	for _, j := range p.Jobs {
		fmt.Fprintf(&b, "  %s:\n    name: %s\n    runs-on: %s\n", j.ID, q(j.Build), q(p.RunsOn))
		if len(j.Needs) > 0 {
			fmt.Fprintf(&b, "    needs: %s\n", needsList(j.Needs))
		}
		fmt.Fprintf(&b, "    steps:\n      - uses: actions/checkout@v4\n      - name: %s\n        run: %s\n", q("build "+j.Build), q(p.runLine(j)))
	}
	return b.String()
}

// gitlabPipeline writes a .gitlab-ci.yml: jobs with needs, so that each
// starts as soon as what it needs is done, whatever its stage.
func gitlabPipeline(p *pipeline) string {
	var b strings.Builder
	fmt.Fprintf(&b, ciHeader, p.File)
	fmt.Fprintf(&b, "variables:\n  IMGBUILD_STATE: %s\n\n", q(p.State))
	for _, j := range p.Jobs {
		fmt.Fprintf(&b, "%s:\n", q(j.Build))
		if p.Tagged {
			fmt.Fprintf(&b, "  tags: [%s]\n", q(p.RunsOn))
		}
		fmt.Fprintf(&b, "  needs: %s\n  script:\n    - %s\n\n", gitlabNeeds(p, j), q(p.runLine(j)))
	}
	return b.String()
}

// gitlabNeeds lists the jobs a job needs, by their names (GitLab job names
// are the builds' names).
func gitlabNeeds(p *pipeline, j ciJob) string {
	byID := map[string]string{}
	for _, o := range p.Jobs {
		byID[o.ID] = o.Build
	}
	var names []string
	for _, id := range j.Needs {
		names = append(names, q(byID[id]))
	}
	return needsList(names)
}
