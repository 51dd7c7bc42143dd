package ansible

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/imgbuild/imgbuild/drivers/cfgtool"
	"github.com/imgbuild/imgbuild/drivers/provision"
	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// LocalConfig is ansible_local()'s configuration.
type LocalConfig struct {
	Shared                `kw:",squash"`
	InventoryGroups       []string `kw:"inventory_groups" doc:"Inventory groups the machine is in."`
	Install               bool     `kw:"install" default:"False" doc:"Install Ansible through the machine's package manager first (apt-get: ansible-core, else ansible; dnf: ansible-core)."`
	StagingDirectory      string   `kw:"staging_directory" doc:"Directory on the machine the playbook is uploaded to (mode 0700); default: a fresh /tmp/imgbuild-ansible-local-<random>."`
	CleanStagingDirectory bool     `kw:"clean_staging_directory" default:"True" doc:"Remove what was uploaded once the playbook has run."`
	provision.BuildFilter `kw:",squash"`
}

// Validate implements schema.Validator.
func (c *LocalConfig) Validate(deferred schema.Deferred) error {
	if err := c.Shared.validate(deferred, "inventory_groups", c.InventoryGroups); err != nil {
		return err
	}
	if c.PlaybookDir != "" && !deferred.Has("playbook_dir") && !deferred.Has("playbook_file") {
		if _, err := inside(c.PlaybookDir, c.PlaybookFile); err != nil {
			return schema.Errorf("playbook_file", "%v", err)
		}
	}
	if c.StagingDirectory != "" && !path.IsAbs(c.StagingDirectory) && !deferred.Has("staging_directory") {
		return schema.Errorf("staging_directory", "%q is not an absolute path on the machine", c.StagingDirectory)
	}
	return c.BuildFilter.Validate()
}

// inside returns p relative to dir, which must hold it.
func inside(dir, p string) (string, error) {
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%s is not inside playbook_dir %s, which is what is uploaded: move it there", p, dir)
	}
	return filepath.ToSlash(rel), nil
}

// LocalDef returns ansible_local()'s declaration.
func LocalDef() *engine.ProvisionerDef {
	return provision.Def("ansible_local",
		"Uploads a playbook (and playbook_dir) to the build's machine and runs ansible-playbook there with -c local, installing Ansible first with install = True; each task's output streams, and a failed task fails the build with its name and message.",
		func(cfg *LocalConfig) engine.Provisioner { return &Local{cfg: cfg} })
}

// Local is the ansible_local() provisioner.
type Local struct {
	cfg *LocalConfig
}

// Provision implements engine.Provisioner.
func (l *Local) Provision(ctx context.Context, env *engine.ProvisionEnv) error {
	return cfgtool.WithTimeout(ctx, "ansible_local "+filepath.Base(l.cfg.PlaybookFile), l.cfg.Timeout, func(ctx context.Context) error { return l.provision(ctx, env) })
}

// staged names in the staging directory.
const (
	stagedPlaybook = "playbook"
	stagedPlugins  = "callback_plugins"
	stagedTmp      = "tmp"
	stagedGalaxy   = "galaxy"
)

func (l *Local) provision(ctx context.Context, env *engine.ProvisionEnv) error {
	c := l.cfg
	if c.Install {
		pkgs := cfgtool.Packages{Apt: []string{"ansible-core|ansible"}, Dnf: []string{"ansible-core|ansible"}}
		if err := cfgtool.Install(ctx, env, "ansible_local", c.Command, pkgs); err != nil {
			return err
		}
	}
	stage, err := cfgtool.NewStage(ctx, env.Comm, "ansible-local", c.StagingDirectory)
	if err != nil {
		return err
	}
	uploaded := []string{stagedPlaybook, stagedPlugins, stagedTmp, stagedGalaxy, "inventory.yml", "extra-vars.json"}
	if c.CleanStagingDirectory {
		defer func() {
			if err := stage.Remove(ctx, uploaded...); err != nil {
				env.UI.Warn("ansible_local: %v", err)
			}
		}()
	}
	env.UI.Say("ansible_local: uploading the playbook to %s", stage.Dir)
	// The playbook: the whole playbook_dir, or the file alone.
	playbook := path.Join(stagedPlaybook, filepath.Base(c.PlaybookFile))
	if c.PlaybookDir != "" {
		if _, err := stage.UploadDir(ctx, stagedPlaybook, c.PlaybookDir); err != nil {
			return err
		}
		rel, err := inside(c.PlaybookDir, c.PlaybookFile)
		if err != nil {
			return err
		}
		playbook = path.Join(stagedPlaybook, rel)
	} else if _, err := stage.UploadFile(ctx, playbook, c.PlaybookFile); err != nil {
		return err
	}
	if _, err := stage.Write(ctx, path.Join(stagedPlugins, "imgbuild.py"), callbackPlugin, 0o600); err != nil {
		return err
	}
	if _, err := stage.Write(ctx, path.Join(stagedTmp, ".keep"), nil, 0o600); err != nil {
		return err
	}
	vars := map[string]any{"ansible_connection": "local", "imgbuild_build": env.Build, "imgbuild_driver": env.Driver}
	inv := &inventory{host: c.HostAlias, groups: c.InventoryGroups, vars: vars}
	data, err := inv.JSON()
	if err != nil {
		return err
	}
	if _, err := stage.Write(ctx, "inventory.yml", data, 0o600); err != nil {
		return err
	}
	argv := []string{c.Command, "-i", stage.CmdPath("inventory.yml"), "-c", "local"}
	if len(c.ExtraVars) > 0 {
		data, err := varsFile(c.ExtraVars)
		if err != nil {
			return fmt.Errorf("extra_vars: %w", err)
		}
		if _, err := stage.Write(ctx, "extra-vars.json", data, 0o600); err != nil {
			return err
		}
		argv = append(argv, "-e", "@"+stage.CmdPath("extra-vars.json"))
	}
	environ := map[string]string{
		"ANSIBLE_CALLBACK_PLUGINS":    stage.CmdPath(stagedPlugins),
		"ANSIBLE_CALLBACKS_ENABLED":   "imgbuild",
		"ANSIBLE_RETRY_FILES_ENABLED": "False",
		"ANSIBLE_LOCAL_TEMP":          stage.CmdPath(stagedTmp),
		"ANSIBLE_REMOTE_TEMP":         stage.CmdPath(stagedTmp),
		"ANSIBLE_PYTHON_INTERPRETER":  "auto_silent",
		"PYTHONUNBUFFERED":            "1",
	}
	if c.GalaxyFile != "" {
		if err := l.galaxy(ctx, env, stage, environ); err != nil {
			return err
		}
	}
	environ = withUser(environ, c.AnsibleEnvVars)
	argv = append(append(argv, c.ExtraArguments...), stage.CmdPath(playbook))
	name := filepath.Base(c.PlaybookFile)
	return cfgtool.Attempts(ctx, env.UI, "ansible-playbook "+name, c.MaxRetries, func(ctx context.Context) error {
		w := newWatch(env.UI, name)
		e := map[string]string{"IMGBUILD_ANSIBLE_EVENTS": w.tag}
		for k, v := range environ {
			e[k] = v
		}
		exports, err := shellquote.Env(e)
		if err != nil {
			return err
		}
		line := "cd " + shellquote.Quote(stage.CmdPath(path.Dir(playbook))) + " && " + exports + shellquote.Join(argv...)
		line = notInstalledCheck(c.Command) + line
		env.UI.Say("ansible_local: running %s on the machine", name)
		status, err := env.Comm.Run(ctx, &engine.Command{Command: line, Stdout: w.stdout, Stderr: w.stderr})
		if err == nil && status == notInstalledStatus {
			w.finish(0, nil)
			return cfgtool.Permanent(fmt.Errorf("ansible_local: %s is not installed on the machine: set install = True to install it through the machine's package manager, or install it in an earlier provisioner", c.Command))
		}
		return w.finish(status, err)
	})
}

// notInstalledStatus is the exit status of notInstalledCheck.
const notInstalledStatus = 127

// notInstalledCheck is the start of a command line that exits with
// notInstalledStatus, silently, when prog is not on the machine's PATH.
func notInstalledCheck(prog string) string {
	return "command -v " + shellquote.Quote(prog) + " >/dev/null 2>&1 || exit 127; "
}

// galaxy uploads galaxy_file and installs its roles and collections on the
// machine into the staging directory.
func (l *Local) galaxy(ctx context.Context, env *engine.ProvisionEnv, stage *cfgtool.Stage, environ map[string]string) error {
	c := l.cfg
	file := path.Join(stagedGalaxy, "requirements.yml")
	if c.PlaybookDir != "" {
		if rel, err := inside(c.PlaybookDir, c.GalaxyFile); err == nil {
			file = path.Join(stagedPlaybook, rel)
		}
	}
	if file == path.Join(stagedGalaxy, "requirements.yml") {
		if _, err := stage.UploadFile(ctx, file, c.GalaxyFile); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(c.GalaxyFile)
	if err != nil {
		return err
	}
	req, err := readRequirements(data)
	if err != nil {
		return fmt.Errorf("galaxy_file %s %v", c.GalaxyFile, err)
	}
	var cmds []string
	if req.roles {
		cmds = append(cmds, shellquote.Join(c.GalaxyCommand, "role", "install", "-r", stage.CmdPath(file), "-p", stage.CmdPath(path.Join(stagedGalaxy, "roles"))))
		environ["ANSIBLE_ROLES_PATH"] = stage.CmdPath(path.Join(stagedGalaxy, "roles")) + ":~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles"
	}
	if req.collections {
		args := []string{c.GalaxyCommand, "collection", "install", "-r", stage.CmdPath(file), "-p", stage.CmdPath(path.Join(stagedGalaxy, "collections"))}
		if c.GalaxyOffline {
			args = append(args, "--offline")
		}
		cmds = append(cmds, shellquote.Join(args...))
		environ["ANSIBLE_COLLECTIONS_PATH"] = stage.CmdPath(path.Join(stagedGalaxy, "collections")) + ":~/.ansible/collections:/usr/share/ansible/collections"
	}
	if len(cmds) == 0 {
		return nil
	}
	line := "cd " + shellquote.Quote(stage.CmdPath(path.Dir(file))) + " && " + strings.Join(cmds, " && ")
	env.UI.Say("ansible_local: installing galaxy_file's requirements on the machine")
	stdout := cfgtool.Stream(env.UI, "stdout", 0)
	stderr := cfgtool.Stream(env.UI, "stderr", 100)
	status, err := env.Comm.Run(ctx, &engine.Command{Command: line, Stdout: stdout, Stderr: stderr})
	stdout.Close()
	stderr.Close()
	if err != nil {
		return fmt.Errorf("galaxy_file: %w", err)
	}
	if status != 0 {
		return fmt.Errorf("galaxy_file %s: ansible-galaxy failed on the machine (exit status %d):%s", c.GalaxyFile, status, cfgtool.Indent(stderr.Last()))
	}
	return nil
}
