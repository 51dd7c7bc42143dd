package goss

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/imgbuild/imgbuild/drivers/cfgtool"
	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
)

// Goss is one goss() provisioner.
type Goss struct{ cfg *Config }

// Provision implements engine.Provisioner.
func (g *Goss) Provision(ctx context.Context, env *engine.ProvisionEnv) error {
	return cfgtool.WithTimeout(ctx, Name, g.cfg.Timeout, func(ctx context.Context) error { return g.run(ctx, env) })
}

// Names in the remote directory.
const (
	stagedGoss = "goss"
	stagedVars = "vars"
)

// goss's exit statuses that mean something to the user: 1 is a failed
// check, 78 a gossfile goss could not read; a shell says 126 when it
// cannot execute the file, 127 when there is none.
const (
	statusFailed      = 1
	statusBadGossfile = 78
	statusCannotRun   = 126
	statusNotFound    = 127
	stderrKept        = 30
	maxJSON           = 64 << 20
	stdoutKept        = 40
)

func (g *Goss) run(ctx context.Context, env *engine.ProvisionEnv) error {
	c := g.cfg
	binary, err := localFile(env.Workspace, "goss_path", c.GossPath, "the goss binary goss() uploads")
	if err != nil {
		return err
	}
	tests := make([]string, len(c.Tests))
	for i, t := range c.Tests {
		if tests[i], err = localFile(env.Workspace, "tests", t, "a gossfile"); err != nil {
			return err
		}
	}
	vars := ""
	if c.VarsFile != "" {
		if vars, err = localFile(env.Workspace, "vars_file", c.VarsFile, "a YAML or JSON file of variables"); err != nil {
			return err
		}
	}
	dir := c.RemotePath
	if dir == "" {
		dir = cfgtool.FreshDir(c.RemoteFolder, Name)
	}
	stage, err := cfgtool.NewStage(ctx, env.Comm, Name, dir)
	if err != nil {
		return fmt.Errorf("goss: %w", err)
	}
	uploaded := append([]string{stagedGoss, stagedVars}, c.testNames()...)
	if c.CleanRemotePath {
		defer func() {
			if err := stage.Remove(ctx, uploaded...); err != nil {
				env.UI.Warn("goss: %v", err)
			}
		}()
	}
	env.UI.Say("goss: uploading %s and %s to %s", shown(env.Workspace, binary), strings.Join(shownAll(env.Workspace, tests), ", "), stage.Dir)
	if err := upload(ctx, stage, stagedGoss, binary, 0o755); err != nil {
		return err
	}
	for i, t := range tests {
		if err := upload(ctx, stage, c.testNames()[i], t, 0o644); err != nil {
			return err
		}
	}
	if vars != "" {
		// Variables may hold secrets: readable by the login user alone.
		if err := upload(ctx, stage, stagedVars, vars, 0o600); err != nil {
			return err
		}
	}
	line, err := g.Command(stage, vars != "")
	if err != nil {
		return err
	}
	env.UI.Say("goss: running %s", line)
	return g.validate(ctx, env, line)
}

// Command is the shell command that runs goss validate in the remote
// directory, whose paths stage knows: cd into it (gossfiles include
// others relative to it), then [sudo -n env] [K=V ...] DIR/goss -g
// DIR/FILE [--vars DIR/vars] [--vars-inline JSON] [--package P] validate
// --retry-timeout R --sleep S --format F [--format-options O].
func (g *Goss) Command(stage *cfgtool.Stage, withVars bool) (string, error) {
	c := g.cfg
	file := c.GossFile
	if file == "" {
		file = c.testNames()[0]
	}
	var argv []string
	if c.UseSudo {
		argv = append(argv, "sudo", "-n")
	}
	if len(c.VarsEnv) > 0 {
		if c.UseSudo {
			// sudo resets the environment; env sets them for goss.
			argv = append(argv, "env")
		}
		for _, k := range slices.Sorted(maps.Keys(c.VarsEnv)) {
			argv = append(argv, k+"="+c.VarsEnv[k])
		}
	}
	argv = append(argv, stage.CmdPath(stagedGoss), "-g", stage.CmdPath(file))
	if withVars {
		argv = append(argv, "--vars", stage.CmdPath(stagedVars))
	}
	if len(c.VarsInline) > 0 {
		data, err := json.Marshal(c.VarsInline)
		if err != nil {
			return "", fmt.Errorf("vars_inline: %w", err)
		}
		argv = append(argv, "--vars-inline", string(data))
	}
	if c.Package != "" {
		argv = append(argv, "--package", c.Package)
	}
	argv = append(argv, "validate", "--retry-timeout", c.RetryTimeout.String(), "--sleep", c.Sleep.String(), "--format", c.Format)
	if c.FormatOptions != "" {
		argv = append(argv, "--format-options", c.FormatOptions)
	}
	return "cd " + shellquote.Quote(stage.CmdPath(".")) + " && " + shellquote.Join(argv...), nil
}

// validate runs line and says how goss's checks ended.
func (g *Goss) validate(ctx context.Context, env *engine.ProvisionEnv, line string) error {
	c := g.cfg
	var out bytes.Buffer
	var stdout interface {
		Write([]byte) (int, error)
		Close() error
	}
	var streamed *cfgtool.Lines
	if c.Format == "json" {
		stdout = &capped{buf: &out, max: maxJSON}
	} else {
		streamed = cfgtool.Stream(env.UI, "stdout", stdoutKept)
		stdout = streamed
	}
	stderr := cfgtool.Stream(env.UI, "stderr", stderrKept)
	status, err := env.Comm.Run(ctx, &engine.Command{Command: line, Stdout: stdout, Stderr: stderr})
	stdout.Close()
	stderr.Close()
	if err != nil {
		return fmt.Errorf("goss: running goss validate: %w", err)
	}
	file := c.GossFile
	if file == "" {
		file = c.testNames()[0]
	}
	switch status {
	case statusCannotRun, statusNotFound:
		return fmt.Errorf("goss: goss_path %s could not be run on the machine (exit status %d):%s\n  goss_path must be a goss binary for the machine's OS and architecture (a goss-linux-amd64 release for an x86-64 Linux machine)",
			shown(env.Workspace, c.GossPath), status, cfgtool.Indent(stderr.Last()))
	case statusBadGossfile:
		return fmt.Errorf("goss: goss could not read %s (exit status 78):%s", file, cfgtool.Indent(stderr.Last()))
	}
	if c.Format != "json" {
		switch status {
		case 0:
			env.UI.Say("goss: %s: every check passed", file)
			return nil
		case statusFailed:
			return fmt.Errorf("goss: %s: checks failed; goss's last lines:%s", file, cfgtool.Indent(nonEmpty(streamed.Last())))
		}
		return fmt.Errorf("goss: goss validate exited with status %d on %s:%s", status, file, cfgtool.Indent(stderr.Last()))
	}
	res, perr := ParseResult(out.Bytes())
	if perr != nil {
		msg := fmt.Sprintf("goss: goss validate exited with status %d on %s, and its output is not the JSON of --format json (%v)", status, file, perr)
		if last := stderr.Last(); len(last) > 0 {
			msg += ":" + cfgtool.Indent(last)
		}
		return errors.New(msg)
	}
	for _, r := range res.Results {
		cfgtool.Emit(env.UI, "stdout", r.Line())
	}
	failed := res.Failed()
	switch {
	case status == 0 && len(failed) == 0:
		env.UI.Say("goss: %s: %s", file, res.Summary.SummaryLine)
		return nil
	case len(failed) > 0:
		lines := make([]string, len(failed))
		for i, r := range failed {
			lines[i] = r.Line()
		}
		return fmt.Errorf("goss: %s: %s:%s", file, res.Summary.SummaryLine, cfgtool.Indent(lines))
	}
	return fmt.Errorf("goss: goss validate exited with status %d on %s (%s):%s", status, file, res.Summary.SummaryLine, cfgtool.Indent(stderr.Last()))
}

// upload writes the local file src into the remote directory as name,
// with mode.
func upload(ctx context.Context, stage *cfgtool.Stage, name, src string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("goss: reading %s: %w", src, err)
	}
	if _, err := stage.Write(ctx, name, data, mode); err != nil {
		return fmt.Errorf("goss: %w", err)
	}
	return nil
}

// localFile resolves a keyword's file against the workspace and checks
// that it is a file (evaluation checked it too; it may have gone since).
func localFile(workspace, kw, p, what string) (string, error) {
	abs := p
	if !filepath.IsAbs(abs) && workspace != "" {
		abs = filepath.Join(workspace, abs)
	}
	fi, err := os.Stat(abs)
	switch {
	case err != nil:
		return "", fmt.Errorf("goss: %s: %s does not exist (%v): name %s on this machine", kw, shown(workspace, abs), err, what)
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("goss: %s: %s is not a regular file: name %s on this machine", kw, shown(workspace, abs), what)
	}
	return abs, nil
}

// shown is a local file as messages name it: relative to the workspace
// when inside it.
func shown(workspace, p string) string {
	if rel, err := filepath.Rel(workspace, p); err == nil && workspace != "" && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}

func shownAll(workspace string, ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = shown(workspace, p)
	}
	return out
}

// nonEmpty drops blank lines.
func nonEmpty(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// capped is a buffer that keeps at most max bytes.
type capped struct {
	buf *bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capped) Close() error { return nil }
