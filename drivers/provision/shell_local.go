package provision

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/drivers/local"
	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// ShellLocalConfig is shell_local()'s configuration.
type ShellLocalConfig struct {
	Command          string            `kw:"command" doc:"A command line to run on this machine with /bin/sh -c."`
	Inline           []string          `kw:"inline" doc:"Commands to run on this machine, one per line of a script run by inline_shebang."`
	Script           string            `kw:"script" path:"file" doc:"A script on this machine to run, by the interpreter its #! line names (/bin/sh without one)."`
	Env              map[string]string `kw:"env" doc:"Environment variables added to imgbuild's own; IMGBUILD_BUILD and IMGBUILD_DRIVER are always set."`
	ValidExitCodes   []int             `kw:"valid_exit_codes" default:"[0]" doc:"Exit statuses that count as success."`
	Timeout          time.Duration     `kw:"timeout" doc:"Fail if the command takes longer than this (\"10m\"); 0 means no limit."`
	WorkingDirectory string            `kw:"working_directory" doc:"Directory to run in, relative to the workspace; default: the workspace."`
	InlineShebang    string            `kw:"inline_shebang" default:"/bin/sh -e" doc:"Interpreter of the script made from inline."`
	BuildFilter      `kw:",squash"`
}

// Validate implements schema.Validator.
func (c *ShellLocalConfig) Validate(deferred schema.Deferred) error {
	if err := exactlyOne("shell_local", []string{"command", "inline", "script"},
		[]bool{c.Command != "" || deferred.Has("command"), len(c.Inline) > 0 || deferred.Has("inline"), c.Script != "" || deferred.Has("script")}); err != nil {
		return err
	}
	if err := checkEnv("env", c.Env); err != nil {
		return err
	}
	if err := checkExitCodes(c.ValidExitCodes); err != nil {
		return err
	}
	return c.BuildFilter.Validate()
}

// ShellLocalDef returns shell_local()'s declaration.
func ShellLocalDef() *engine.ProvisionerDef {
	return Def("shell_local",
		"Runs a command or script on this machine (not the build's), in the workspace, with its output streamed line by line; cancelling the build kills it and everything it started.",
		func(cfg *ShellLocalConfig) engine.Provisioner { return &ShellLocal{cfg: cfg} })
}

// ShellLocal is the shell_local() provisioner. Relative paths (script,
// working_directory) are relative to the current directory of the process,
// which the command line tool sets to the workspace.
type ShellLocal struct {
	cfg *ShellLocalConfig
}

// Provision implements engine.Provisioner.
func (s *ShellLocal) Provision(ctx context.Context, env *engine.ProvisionEnv) error {
	ctx, cancel := withTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	what, line, err := s.commandLine(env)
	if err != nil {
		return err
	}
	dir := s.cfg.WorkingDirectory
	if dir == "" {
		dir = "."
	}
	if !filepath.IsAbs(dir) && env.Workspace != "" {
		dir = filepath.Join(env.Workspace, dir)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("working_directory %q is not a directory: create it first or fix the path", s.cfg.WorkingDirectory)
	}
	var environ []string
	benv := buildEnv(s.cfg.Env, env.Build, env.Driver)
	names := make([]string, 0, len(benv))
	for k := range benv {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		environ = append(environ, k+"="+benv[k])
	}
	env.UI.Say("running %s on this machine", what)
	stdout, stderr := env.UI.Lines("stdout"), env.UI.Lines("stderr")
	last := stderrTail()
	status, err := local.RunShell(ctx, dir, environ, &engine.Command{Command: line, Stdout: stdout, Stderr: io.MultiWriter(stderr, last)})
	stdout.Close()
	stderr.Close()
	if err != nil {
		return explainTimeout(ctx, what, s.cfg.Timeout, err)
	}
	if !validStatus(s.cfg.ValidExitCodes, status) {
		return &exitError{What: what, Status: status, Valid: s.cfg.ValidExitCodes, Stderr: quoted(last)}
	}
	return nil
}

// commandLine returns what runs, for messages, and the /bin/sh -c line
// that runs it.
func (s *ShellLocal) commandLine(env *engine.ProvisionEnv) (what, line string, err error) {
	switch {
	case s.cfg.Command != "":
		return fmt.Sprintf("command %q", firstLine(s.cfg.Command)), s.cfg.Command, nil
	case len(s.cfg.Inline) > 0:
		dir := env.WorkDir
		if dir == "" {
			dir = os.TempDir()
		}
		f, err := os.CreateTemp(dir, "imgbuild-inline-*.sh")
		if err != nil {
			return "", "", fmt.Errorf("writing the inline script: %w", err)
		}
		_, err = f.Write(inlineScript(s.cfg.InlineShebang, s.cfg.Inline))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", "", fmt.Errorf("writing the inline script: %w", err)
		}
		return "inline script", interpreter(s.cfg.InlineShebang) + " " + shellquote.Quote(f.Name()), nil
	}
	abs, err := filepath.Abs(s.cfg.Script)
	if err != nil {
		return "", "", err
	}
	shebang, err := readShebang(abs)
	if err != nil {
		return "", "", fmt.Errorf("reading script %s: %w", s.cfg.Script, err)
	}
	return filepath.Base(s.cfg.Script), interpreter(shebang) + " " + shellquote.Quote(abs), nil
}

// interpreter returns the command that runs a script for a shebang
// ("/bin/sh -e", "#!/usr/bin/env bash"); /bin/sh when there is none.
func interpreter(shebang string) string {
	if l := strings.TrimSpace(shebangLine(shebang)); l != "" {
		return strings.TrimPrefix(l, "#!")
	}
	return "/bin/sh"
}

// readShebang returns a script's #! line without "#!", or "".
func readShebang(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, 512)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	if !strings.HasPrefix(line, "#!") {
		return "", nil
	}
	return strings.TrimSpace(line[2:]), nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
