package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/retry"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/workspace"
)

// DefaultExecuteCommand is shell()'s default execute_command.
const DefaultExecuteCommand = "chmod +x {path}; {vars}{path}"

// ShellConfig is shell()'s configuration.
//
// execute_command is the command line that runs each uploaded script. Two
// placeholders are replaced in it: {path}, the script's path on the
// machine, shell-quoted; and {vars}, the environment as
// "export A='x' B='y'; " (empty when there is none), meant to be followed
// directly by a command. Everything else is kept as written, including the
// shell's own ${VAR}. To run scripts with sudo keeping the environment:
// "chmod +x {path}; {vars}sudo -E {path}".
type ShellConfig struct {
	Inline           []string          `kw:"inline" doc:"Commands to run, one per line of a script run by inline_shebang."`
	Script           string            `kw:"script" path:"file" doc:"A script on this machine to upload and run."`
	Scripts          []string          `kw:"scripts" path:"file" doc:"Scripts on this machine to upload and run, in order."`
	Env              map[string]string `kw:"env" doc:"Environment variables for the scripts, which receive the values exactly; IMGBUILD_BUILD and IMGBUILD_DRIVER are always set."`
	ExecuteCommand   string            `kw:"execute_command" default:"chmod +x {path}; {vars}{path}" doc:"Command line that runs each script: {path} is its quoted path, {vars} \"export A='x'; \" for env."`
	ValidExitCodes   []int             `kw:"valid_exit_codes" default:"[0]" doc:"Exit statuses that count as success."`
	Timeout          time.Duration     `kw:"timeout" doc:"Fail if the provisioner takes longer than this (\"10m\"); 0 means no limit."`
	MaxRetries       int               `kw:"max_retries" doc:"Run a failed script again, up to this many more times."`
	PauseBefore      time.Duration     `kw:"pause_before" doc:"Wait this long before starting (\"30s\")."`
	ExpectDisconnect bool              `kw:"expect_disconnect" default:"False" doc:"Count losing the connection (a reboot) as success."`
	RemoteFolder     string            `kw:"remote_folder" default:"/tmp" doc:"Directory on the machine that scripts are uploaded to."`
	InlineShebang    string            `kw:"inline_shebang" default:"/bin/sh -e" doc:"Interpreter of the script made from inline."`
	BuildFilter      `kw:",squash"`
}

// Validate implements schema.Validator.
func (c *ShellConfig) Validate(deferred schema.Deferred) error {
	if err := exactlyOne("shell", []string{"inline", "script", "scripts"},
		[]bool{len(c.Inline) > 0 || deferred.Has("inline"), c.Script != "" || deferred.Has("script"), len(c.Scripts) > 0 || deferred.Has("scripts")}); err != nil {
		return err
	}
	if err := checkEnv("env", c.Env); err != nil {
		return err
	}
	if !deferred.Has("execute_command") {
		if _, err := ExpandPlaceholders(c.ExecuteCommand, map[string]string{"path": "", "vars": ""}); err != nil {
			return schema.Errorf("execute_command", "%v", err)
		}
		if !containsPlaceholder(c.ExecuteCommand, "path") {
			return schema.Errorf("execute_command", "%q never runs the script: it must contain {path}", c.ExecuteCommand)
		}
	}
	if err := checkExitCodes(c.ValidExitCodes); err != nil {
		return err
	}
	if c.MaxRetries < 0 {
		return schema.Errorf("max_retries", "%d is negative", c.MaxRetries)
	}
	if c.RemoteFolder == "" && !deferred.Has("remote_folder") {
		return schema.Errorf("remote_folder", "is empty: name a writable directory on the machine, such as \"/tmp\"")
	}
	return c.BuildFilter.Validate()
}

// containsPlaceholder reports whether tmpl uses {name}.
func containsPlaceholder(tmpl, name string) bool {
	marked, err := ExpandPlaceholders(tmpl, map[string]string{"path": "\x00path\x00", "vars": "\x00vars\x00"})
	return err == nil && strings.Contains(marked, "\x00"+name+"\x00")
}

// ShellDef returns shell()'s declaration.
func ShellDef() *engine.ProvisionerDef {
	return Def("shell",
		"Runs shell scripts on the build's machine: inline commands, or script files uploaded and run in order, with their output streamed line by line.",
		func(cfg *ShellConfig) engine.Provisioner { return &Shell{cfg: cfg} })
}

// Shell is the shell() provisioner.
type Shell struct {
	cfg *ShellConfig
}

// retryDelay is the wait between attempts of a failed script.
var retryDelay = 2 * time.Second

// script is one script to run: a name for messages and its text.
type script struct {
	name string
	body []byte
}

// Provision implements engine.Provisioner.
func (s *Shell) Provision(ctx context.Context, env *engine.ProvisionEnv) error {
	ctx, cancel := withTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	current := "pause_before"
	err := s.provision(ctx, env, &current)
	return explainTimeout(ctx, current, s.cfg.Timeout, err)
}

// provision runs the scripts, keeping in current the name of the one
// running, for a timeout's message.
func (s *Shell) provision(ctx context.Context, env *engine.ProvisionEnv, current *string) error {
	if d := s.cfg.PauseBefore; d > 0 {
		env.UI.Say("pausing %s before running (pause_before)", d)
		if err := retry.Sleep(ctx, d); err != nil {
			return err
		}
	}
	scripts, err := s.scripts(env)
	if err != nil {
		return err
	}
	vars, err := shellquote.Env(buildEnv(s.cfg.Env, env.Build, env.Driver))
	if err != nil {
		return err
	}
	for _, sc := range scripts {
		*current = sc.name
		if err := s.runWithRetries(ctx, env, sc, vars); err != nil {
			return err
		}
	}
	return nil
}

func (s *Shell) scripts(env *engine.ProvisionEnv) ([]script, error) {
	if len(s.cfg.Inline) > 0 {
		return []script{{name: "inline script", body: inlineScript(s.cfg.InlineShebang, s.cfg.Inline)}}, nil
	}
	paths := s.cfg.Scripts
	if s.cfg.Script != "" {
		paths = []string{s.cfg.Script}
	}
	var out []script
	for _, p := range paths {
		body, err := readInput(env.Workspace, p)
		if err != nil {
			return nil, fmt.Errorf("reading script %s: %w", p, err)
		}
		out = append(out, script{name: filepath.Base(p), body: body})
	}
	return out, nil
}

func (s *Shell) runWithRetries(ctx context.Context, env *engine.ProvisionEnv, sc script, vars string) error {
	attempts := 1 + s.cfg.MaxRetries
	err := retry.Do(ctx, retry.Backoff{First: retryDelay}, attempts,
		func(attempt int, err error, wait time.Duration) {
			env.UI.Warn("%v (attempt %d of %d); trying again in %s", err, attempt, attempts, wait)
		},
		func(ctx context.Context, _ int) error {
			env.UI.Say("running %s", sc.name)
			return s.runOnce(ctx, env, sc, vars)
		})
	if err != nil && attempts > 1 && ctx.Err() == nil {
		return fmt.Errorf("%w (after %d attempts; max_retries = %d)", err, attempts, s.cfg.MaxRetries)
	}
	return err
}

// runOnce uploads sc, runs it through execute_command and removes it.
func (s *Shell) runOnce(ctx context.Context, env *engine.ProvisionEnv, sc script, vars string) error {
	remote := path.Join(s.cfg.RemoteFolder, "imgbuild-script-"+randomName()+".sh")
	err := env.Comm.Upload(ctx, remote, bytes.NewReader(sc.body), engine.Transfer{Size: int64(len(sc.body)), Mode: 0o755})
	if err != nil {
		return fmt.Errorf("%s: %w", sc.name, err) // the error names remote
	}
	cmdPath := remote
	if cp, ok := env.Comm.(engine.PathMapper); ok {
		if cmdPath, err = cp.CommandPath(remote); err != nil {
			return err
		}
	}
	line, err := ExpandPlaceholders(s.cfg.ExecuteCommand, map[string]string{"path": shellquote.Quote(cmdPath), "vars": vars})
	if err != nil {
		return fmt.Errorf("execute_command: %w", err)
	}
	// The script removes itself once run, sparing a round trip to the
	// machine; only a run cut short needs remove. The newlines keep a
	// trailing comment in execute_command from swallowing the rest.
	line = "(\n" + line + "\n); imgbuild_status=$?; rm -f " + shellquote.Quote(cmdPath) + "; exit $imgbuild_status"
	stdout, stderr := env.UI.Lines("stdout"), env.UI.Lines("stderr")
	last := stderrTail()
	status, err := env.Comm.Run(ctx, &engine.Command{Command: line, Stdout: stdout, Stderr: io.MultiWriter(stderr, last)})
	stdout.Close()
	stderr.Close()
	if err != nil && errors.Is(err, engine.ErrDisconnected) {
		if s.cfg.ExpectDisconnect {
			env.UI.Say("%s: the connection was lost, as expected (expect_disconnect)", sc.name)
			return nil
		}
		return fmt.Errorf("%s: %w; if the script reboots the machine, set expect_disconnect = True", sc.name, err)
	}
	if err != nil {
		s.remove(ctx, env, cmdPath)
		return fmt.Errorf("running %s: %w", sc.name, err)
	}
	if !validStatus(s.cfg.ValidExitCodes, status) {
		return &exitError{What: sc.name, Status: status, Valid: s.cfg.ValidExitCodes, Stderr: quoted(last)}
	}
	return nil
}

// remove deletes an uploaded script, even when ctx was cancelled.
func (s *Shell) remove(ctx context.Context, env *engine.ProvisionEnv, cmdPath string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	status, err := env.Comm.Run(rctx, &engine.Command{Command: "rm -f " + shellquote.Quote(cmdPath)})
	if err != nil || status != 0 {
		env.UI.Warn("could not remove the uploaded script %s (status %d, %v)", cmdPath, status, err)
	}
}

// readInput reads p, a file the description named, through the workspace
// when it lies inside it (see workspace.OpenInput).
func readInput(workspaceDir, p string) ([]byte, error) {
	f, err := workspace.OpenInput(workspaceDir, p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
