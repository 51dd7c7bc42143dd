package chef

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/drivers/cfgtool"
	"github.com/imgbuild/imgbuild/drivers/provision"
	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
)

// DefaultExecuteCommand is chef_solo()'s default execute_command, as
// Packer's.
const DefaultExecuteCommand = "{sudo}chef-solo --no-color -c {config} -j {json}"

// DefaultInstallCommand is chef_solo()'s default install_command: Chef's
// own installer, as Packer's.
const DefaultInstallCommand = "curl -L https://omnitruck.chef.io/install.sh | {sudo}bash -s --{version}"

// Config is chef_solo()'s configuration.
//
// execute_command's placeholders: {sudo} ("sudo -n " when the machine's
// user is not root), {config} (solo.rb) and {json} (the node's JSON), both
// quoted. install_command's: {sudo}, and {version} (" -v 18.2.7" when
// version is set, else "").
type Config struct {
	CookbookPaths              []string               `kw:"cookbook_paths" path:"dir" doc:"Directories of cookbooks, uploaded and named in solo.rb's cookbook_path."`
	RemoteCookbookPaths        []string               `kw:"remote_cookbook_paths" doc:"Directories of cookbooks already on the machine, added to cookbook_path."`
	RolesPath                  string                 `kw:"roles_path" path:"dir" doc:"A directory of roles (role_path)."`
	DataBagsPath               string                 `kw:"data_bags_path" path:"dir" doc:"A directory of data bags (data_bag_path)."`
	EnvironmentsPath           string                 `kw:"environments_path" path:"dir" doc:"A directory of environments (environment_path)."`
	EncryptedDataBagSecretPath string                 `kw:"encrypted_data_bag_secret_path" path:"file" doc:"The secret that decrypts encrypted data bags, uploaded with mode 0600 (encrypted_data_bag_secret)."`
	ChefEnvironment            string                 `kw:"chef_environment" doc:"The environment the node is in (environment); it must be in environments_path."`
	RunList                    []string               `kw:"run_list" doc:"The recipes and roles to run: \"recipe[nginx]\", \"role[web]\"."`
	JSON                       map[string]value.Value `kw:"json" doc:"Node attributes, written to the node's JSON file (mode 0600) with run_list."`
	ChefLicense                string                 `kw:"chef_license" enum:"accept|accept-silent|accept-no-persist" doc:"Accepts Chef's license (chef_license in solo.rb), which Chef Infra Client 15 and later require."`
	ExecuteCommand             string                 `kw:"execute_command" default:"{sudo}chef-solo --no-color -c {config} -j {json}" doc:"Command line that runs Chef: {sudo}, {config} and {json} are filled in."`
	InstallCommand             string                 `kw:"install_command" default:"curl -L https://omnitruck.chef.io/install.sh | {sudo}bash -s --{version}" doc:"Command line that installs Chef when chef-solo is not on the machine: {sudo} and {version} are filled in."`
	Version                    string                 `kw:"version" doc:"The Chef version install_command installs; default: the latest."`
	SkipInstall                bool                   `kw:"skip_install" default:"False" doc:"Never run install_command: Chef is on the machine already."`
	StagingDirectory           string                 `kw:"staging_directory" doc:"Directory on the machine the files are uploaded to (mode 0700); default: a fresh /tmp/imgbuild-chef-<random>."`
	CleanStagingDirectory      bool                   `kw:"clean_staging_directory" default:"True" doc:"Remove what was uploaded once Chef has run."`
	ValidExitCodes             []int                  `kw:"valid_exit_codes" default:"[0]" doc:"Exit statuses of chef-solo that count as success."`
	Timeout                    time.Duration          `kw:"timeout" doc:"Fail if the provisioner takes longer than this (\"30m\"); 0 means no limit."`
	MaxRetries                 int                    `kw:"max_retries" doc:"Run a failed chef-solo again, up to this many more times."`
	provision.BuildFilter      `kw:",squash"`
}

var (
	runListItem = regexp.MustCompile(`^((recipe|role)\[[A-Za-z0-9_.:@ -]+\]|[A-Za-z0-9_.:-]+)$`)
	envName     = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// checkTemplate checks a command template's placeholders; need, when set,
// must be among them.
func checkTemplate(kw, tmpl string, names []string, need ...string) error {
	vals := map[string]string{}
	for _, n := range names {
		vals[n] = "\x00" + n + "\x00"
	}
	marked, err := provision.ExpandPlaceholders(tmpl, vals)
	if err != nil {
		return schema.Errorf(kw, "%v", err)
	}
	for _, n := range need {
		if !strings.Contains(marked, "\x00"+n+"\x00") {
			return schema.Errorf(kw, "%q never names %s: it must contain {%s}", tmpl, n, n)
		}
	}
	return nil
}

// Validate implements schema.Validator.
func (c *Config) Validate(deferred schema.Deferred) error {
	if !deferred.Has("execute_command") {
		if err := checkTemplate("execute_command", c.ExecuteCommand, []string{"sudo", "config", "json"}, "config", "json"); err != nil {
			return err
		}
	}
	if !deferred.Has("install_command") {
		if err := checkTemplate("install_command", c.InstallCommand, []string{"sudo", "version"}); err != nil {
			return err
		}
	}
	if !deferred.Has("run_list") {
		for _, r := range c.RunList {
			if !runListItem.MatchString(r) {
				return schema.Errorf("run_list", "%q is not a run list item: write \"recipe[cookbook::recipe]\", \"role[name]\" or a cookbook's name", r)
			}
		}
	}
	if _, ok := c.JSON["run_list"]; ok && len(c.RunList) > 0 {
		return schema.Errorf("json", "sets run_list, and so does run_list: say it in one place")
	}
	if c.ChefEnvironment != "" && !deferred.Has("chef_environment") {
		if !envName.MatchString(c.ChefEnvironment) {
			return schema.Errorf("chef_environment", "%q is not an environment name (letters, digits, _ and -)", c.ChefEnvironment)
		}
		if c.EnvironmentsPath == "" && !deferred.Has("environments_path") {
			return schema.Errorf("chef_environment", "is set but environments_path is not: chef-solo reads the environment %q from there", c.ChefEnvironment)
		}
	}
	if len(c.CookbookPaths) == 0 && len(c.RemoteCookbookPaths) == 0 && !deferred.Has("cookbook_paths") && !deferred.Has("remote_cookbook_paths") {
		return schema.Errorf("cookbook_paths", "is empty: name the directories of cookbooks to upload (or remote_cookbook_paths, on the machine)")
	}
	for _, p := range c.RemoteCookbookPaths {
		if !path.IsAbs(p) {
			return schema.Errorf("remote_cookbook_paths", "%q is not an absolute path on the machine", p)
		}
	}
	if c.StagingDirectory != "" && !path.IsAbs(c.StagingDirectory) && !deferred.Has("staging_directory") {
		return schema.Errorf("staging_directory", "%q is not an absolute path on the machine", c.StagingDirectory)
	}
	if len(c.ValidExitCodes) == 0 {
		return schema.Errorf("valid_exit_codes", "is empty, so no exit status would count as success; leave it out to accept only 0")
	}
	if c.MaxRetries < 0 {
		return schema.Errorf("max_retries", "%d is negative", c.MaxRetries)
	}
	return c.BuildFilter.Validate()
}

// Def returns chef_solo()'s declaration.
func Def() *engine.ProvisionerDef {
	return provision.Def("chef_solo",
		"Runs Chef Infra Client in local mode (chef-solo) on the build's machine: installs it unless it is there, uploads the cookbooks, roles, data bags and environments, and writes solo.rb and the node's JSON.",
		func(cfg *Config) engine.Provisioner { return &Solo{cfg: cfg} })
}

// Register adds chef_solo() to r.
func Register(r *engine.Registry) { r.AddProvisioner(Def()) }

// Solo is the chef_solo() provisioner.
type Solo struct {
	cfg *Config
}

// Provision implements engine.Provisioner.
func (s *Solo) Provision(ctx context.Context, env *engine.ProvisionEnv) error {
	return cfgtool.WithTimeout(ctx, "chef_solo", s.cfg.Timeout, func(ctx context.Context) error { return s.provision(ctx, env) })
}

// Names in the staging directory.
const (
	stagedSolo   = "solo.rb"
	stagedNode   = "node.json"
	stagedSecret = "encrypted_data_bag_secret"
)

func (s *Solo) provision(ctx context.Context, env *engine.ProvisionEnv) error {
	c := s.cfg
	sudo, err := cfgtool.Sudo(ctx, env.Comm)
	if err != nil {
		return err
	}
	if !c.SkipInstall {
		if err := s.install(ctx, env, sudo); err != nil {
			return err
		}
	}
	stage, err := cfgtool.NewStage(ctx, env.Comm, "chef", c.StagingDirectory)
	if err != nil {
		return err
	}
	uploaded := []string{stagedSolo, stagedNode, stagedSecret, "cookbooks", "roles", "data_bags", "environments"}
	if c.CleanStagingDirectory {
		defer func() {
			if err := stage.Remove(ctx, uploaded...); err != nil {
				env.UI.Warn("chef_solo: %v", err)
			}
		}()
	}
	env.UI.Say("chef_solo: uploading cookbooks to %s", stage.Dir)
	settings := soloSettings{License: c.ChefLicense, Environment: c.ChefEnvironment}
	for i, p := range c.CookbookPaths {
		name := path.Join("cookbooks", strconv.Itoa(i))
		if _, err := stage.UploadDir(ctx, name, p); err != nil {
			return err
		}
		settings.CookbookPaths = append(settings.CookbookPaths, stage.CmdPath(name))
	}
	settings.CookbookPaths = append(settings.CookbookPaths, c.RemoteCookbookPaths...)
	for _, d := range []struct {
		local, name string
		into        *string
	}{
		{c.RolesPath, "roles", &settings.RolePath},
		{c.DataBagsPath, "data_bags", &settings.DataBagPath},
		{c.EnvironmentsPath, "environments", &settings.EnvironmentPath},
	} {
		if d.local == "" {
			continue
		}
		if _, err := stage.UploadDir(ctx, d.name, d.local); err != nil {
			return err
		}
		*d.into = stage.CmdPath(d.name)
	}
	if c.EncryptedDataBagSecretPath != "" {
		if _, err := stage.UploadFile(ctx, stagedSecret, c.EncryptedDataBagSecretPath); err != nil {
			return err
		}
		if err := chmod(ctx, env.Comm, stage.CmdPath(stagedSecret)); err != nil {
			return err
		}
		settings.EncryptedDataBagSecret = stage.CmdPath(stagedSecret)
	}
	if _, err := stage.Write(ctx, stagedSolo, []byte(settings.SoloRB()), 0o644); err != nil {
		return err
	}
	node, err := NodeJSON(c.JSON, c.RunList)
	if err != nil {
		return err
	}
	if _, err := stage.Write(ctx, stagedNode, node, 0o600); err != nil {
		return err
	}
	line, err := provision.ExpandPlaceholders(c.ExecuteCommand, map[string]string{
		"sudo": sudo, "config": shellquote.Quote(stage.CmdPath(stagedSolo)), "json": shellquote.Quote(stage.CmdPath(stagedNode)),
	})
	if err != nil {
		return fmt.Errorf("execute_command: %w", err)
	}
	return cfgtool.Attempts(ctx, env.UI, "chef-solo", c.MaxRetries, func(ctx context.Context) error {
		return s.run(ctx, env, line)
	})
}

// chmod makes a file readable by its owner only.
func chmod(ctx context.Context, comm engine.Communicator, p string) error {
	status, err := comm.Run(ctx, &engine.Command{Command: "chmod 0600 " + shellquote.Quote(p)})
	if err == nil && status != 0 {
		err = fmt.Errorf("exit status %d", status)
	}
	if err != nil {
		return fmt.Errorf("chmod 0600 %s on the machine: %w", p, err)
	}
	return nil
}

// install runs install_command unless chef-solo is on the machine.
func (s *Solo) install(ctx context.Context, env *engine.ProvisionEnv, sudo string) error {
	c := s.cfg
	status, err := env.Comm.Run(ctx, &engine.Command{Command: "command -v chef-solo"})
	if err != nil {
		return fmt.Errorf("chef_solo: looking for chef-solo on the machine: %w", err)
	}
	if status == 0 {
		env.UI.Say("chef_solo: chef-solo is on the machine already; not running install_command")
		return nil
	}
	version := ""
	if c.Version != "" {
		version = " -v " + shellquote.Quote(c.Version)
	}
	line, err := provision.ExpandPlaceholders(c.InstallCommand, map[string]string{"sudo": sudo, "version": version})
	if err != nil {
		return fmt.Errorf("install_command: %w", err)
	}
	env.UI.Say("chef_solo: installing Chef: %s", line)
	stdout := cfgtool.Stream(env.UI, "stdout", 0)
	stderr := cfgtool.Stream(env.UI, "stderr", 8)
	status, err = env.Comm.Run(ctx, &engine.Command{Command: line, Stdout: stdout, Stderr: stderr})
	stdout.Close()
	stderr.Close()
	if err != nil {
		return fmt.Errorf("chef_solo: install_command: %w", err)
	}
	if status != 0 {
		return fmt.Errorf("chef_solo: install_command %q failed (exit status %d); last lines of stderr:%s", line, status, cfgtool.Indent(stderr.Last()))
	}
	return nil
}

// run runs chef-solo once.
func (s *Solo) run(ctx context.Context, env *engine.ProvisionEnv, line string) error {
	stdout := cfgtool.Stream(env.UI, "stdout", 20)
	stderr := cfgtool.Stream(env.UI, "stderr", 20)
	env.UI.Say("chef_solo: running %s", line)
	status, err := env.Comm.Run(ctx, &engine.Command{Command: line, Stdout: stdout, Stderr: stderr})
	stdout.Close()
	stderr.Close()
	if err != nil {
		return fmt.Errorf("chef-solo: %w", err)
	}
	if slices.Contains(s.cfg.ValidExitCodes, status) {
		return nil
	}
	if status == 127 {
		return cfgtool.Permanent(fmt.Errorf("chef-solo is not installed on the machine (exit status 127): leave skip_install off so that install_command installs it, or install Chef Infra Client in an earlier provisioner; last lines of stderr:%s", cfgtool.Indent(stderr.Last())))
	}
	// Chef prints the failed resource and its error on stdout ("FATAL:",
	// "Error executing action"), the stack trace's place on stderr.
	return fmt.Errorf("chef-solo exited with status %d; last lines of its output:%s", status, cfgtool.Indent(append(stdout.Last(), stderr.Last()...)))
}

// soloSettings are what solo.rb says.
type soloSettings struct {
	CookbookPaths          []string
	RolePath               string
	DataBagPath            string
	EnvironmentPath        string
	Environment            string
	EncryptedDataBagSecret string
	License                string
}

// rubyString quotes s as a single-quoted Ruby string literal.
func rubyString(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `\'`) + "'"
}

// SoloRB renders solo.rb: one Chef setting per line, in Ruby.
func (s soloSettings) SoloRB() string {
	var b strings.Builder
	b.WriteString("# Written by imgbuild's chef_solo().\n")
	quoted := make([]string, len(s.CookbookPaths))
	for i, p := range s.CookbookPaths {
		quoted[i] = rubyString(p)
	}
	fmt.Fprintf(&b, "cookbook_path [%s]\n", strings.Join(quoted, ", "))
	for _, kv := range [][2]string{
		{"role_path", s.RolePath},
		{"data_bag_path", s.DataBagPath},
		{"environment_path", s.EnvironmentPath},
		{"environment", s.Environment},
		{"encrypted_data_bag_secret", s.EncryptedDataBagSecret},
		{"chef_license", s.License},
	} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "%s %s\n", kv[0], rubyString(kv[1]))
		}
	}
	return b.String()
}

// NodeJSON renders the node's JSON: the json attributes, with run_list.
func NodeJSON(attrs map[string]value.Value, runList []string) ([]byte, error) {
	node := cfgtool.PlainMap(attrs)
	if len(runList) > 0 {
		node["run_list"] = runList
	}
	data, err := json.MarshalIndent(node, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return append(data, '\n'), nil
}
