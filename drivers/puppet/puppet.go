package puppet

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/imgbuild/imgbuild/drivers/cfgtool"
	"github.com/imgbuild/imgbuild/drivers/provision"
	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// DefaultExecuteCommand is puppet_apply()'s default execute_command.
const DefaultExecuteCommand = "cd {working_dir} && {sudo}{facter}puppet apply --detailed-exitcodes {args}{manifest}"

// Config is puppet_apply()'s configuration.
//
// execute_command is the command line that runs Puppet. Its placeholders:
// {working_dir}, the directory it runs in, quoted; {sudo}, "sudo -n " when
// the machine's user is not root, else ""; {facter}, "env FACTER_a='x' "
// for the facts (empty without any); {args}, the options imgbuild passes
// (--modulepath, --hiera_config, --color=false and extra_arguments), each
// quoted and followed by a space; {manifest}, the uploaded manifest,
// quoted.
type Config struct {
	ManifestFile          string            `kw:"manifest_file,required" path:"any" doc:"The manifest to apply: a .pp file, or a directory of them (Puppet reads them in order)."`
	ModulePaths           []string          `kw:"module_paths" path:"dir" doc:"Directories of Puppet modules, uploaded and given to Puppet as --modulepath."`
	HieraConfigPath       string            `kw:"hiera_config_path" path:"file" doc:"A hiera.yaml (version 5), uploaded with the data directories it names relative to itself, and given as --hiera_config."`
	Facter                map[string]string `kw:"facter" doc:"Facts for the manifest, given as FACTER_<name> environment variables."`
	ExtraArguments        []string          `kw:"extra_arguments" doc:"More arguments for puppet apply, each one word (\"--debug\", \"--tags\", \"web\")."`
	ExecuteCommand        string            `kw:"execute_command" default:"cd {working_dir} && {sudo}{facter}puppet apply --detailed-exitcodes {args}{manifest}" doc:"Command line that runs Puppet: {working_dir}, {sudo}, {facter}, {args} and {manifest} are filled in."`
	ValidExitCodes        []int             `kw:"valid_exit_codes" default:"[0, 2]" doc:"Exit statuses that count as success: with --detailed-exitcodes, 0 is no change and 2 changes made."`
	Install               bool              `kw:"install" default:"False" doc:"Install Puppet through the machine's package manager first (apt-get or dnf: puppet)."`
	StagingDirectory      string            `kw:"staging_directory" doc:"Directory on the machine the files are uploaded to (mode 0700); default: a fresh /tmp/imgbuild-puppet-<random>."`
	WorkingDirectory      string            `kw:"working_directory" doc:"Directory on the machine Puppet runs in; default: the staging directory."`
	CleanStagingDirectory bool              `kw:"clean_staging_directory" default:"True" doc:"Remove what was uploaded once Puppet has run."`
	Timeout               time.Duration     `kw:"timeout" doc:"Fail if the provisioner takes longer than this (\"30m\"); 0 means no limit."`
	MaxRetries            int               `kw:"max_retries" doc:"Run a failed puppet apply again, up to this many more times."`
	provision.BuildFilter `kw:",squash"`
}

// placeholders are execute_command's.
var placeholders = []string{"working_dir", "sudo", "facter", "args", "manifest"}

// Validate implements schema.Validator.
func (c *Config) Validate(deferred schema.Deferred) error {
	if !deferred.Has("execute_command") {
		vals := map[string]string{}
		for _, p := range placeholders {
			vals[p] = "\x00" + p + "\x00"
		}
		marked, err := provision.ExpandPlaceholders(c.ExecuteCommand, vals)
		if err != nil {
			return schema.Errorf("execute_command", "%v", err)
		}
		if !strings.Contains(marked, "\x00manifest\x00") {
			return schema.Errorf("execute_command", "%q never names the manifest: it must contain {manifest}", c.ExecuteCommand)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Facter)) {
		if !shellquote.ValidName("FACTER_" + k) {
			return schema.Errorf("facter", "%q is not a fact name Puppet can be given (letters, digits and _)", k)
		}
	}
	if len(c.ValidExitCodes) == 0 {
		return schema.Errorf("valid_exit_codes", "is empty, so no exit status would count as success; leave it out for 0 and 2")
	}
	for _, p := range []struct{ kw, v string }{{"staging_directory", c.StagingDirectory}, {"working_directory", c.WorkingDirectory}} {
		if p.v != "" && !path.IsAbs(p.v) && !deferred.Has(p.kw) {
			return schema.Errorf(p.kw, "%q is not an absolute path on the machine", p.v)
		}
	}
	if c.MaxRetries < 0 {
		return schema.Errorf("max_retries", "%d is negative", c.MaxRetries)
	}
	return c.BuildFilter.Validate()
}

// Def returns puppet_apply()'s declaration.
func Def() *engine.ProvisionerDef {
	return provision.Def("puppet_apply",
		"Applies a Puppet manifest on the build's machine without a Puppet server (masterless, puppet apply), with its modules, Hiera data and facts uploaded first; install = True installs Puppet through the machine's package manager.",
		func(cfg *Config) engine.Provisioner { return &Apply{cfg: cfg} })
}

// Register adds puppet_apply() to r.
func Register(r *engine.Registry) { r.AddProvisioner(Def()) }

// Apply is the puppet_apply() provisioner.
type Apply struct {
	cfg *Config
}

// Provision implements engine.Provisioner.
func (a *Apply) Provision(ctx context.Context, env *engine.ProvisionEnv) error {
	return cfgtool.WithTimeout(ctx, "puppet_apply", a.cfg.Timeout, func(ctx context.Context) error { return a.provision(ctx, env) })
}

func (a *Apply) provision(ctx context.Context, env *engine.ProvisionEnv) error {
	c := a.cfg
	if c.Install {
		if err := cfgtool.Install(ctx, env, "puppet_apply", "puppet", cfgtool.Packages{Apt: []string{"puppet"}, Dnf: []string{"puppet"}}); err != nil {
			return err
		}
	}
	stage, err := cfgtool.NewStage(ctx, env.Comm, "puppet", c.StagingDirectory)
	if err != nil {
		return err
	}
	uploaded := []string{"manifests", "modules", "hiera"}
	if c.CleanStagingDirectory {
		defer func() {
			if err := stage.Remove(ctx, uploaded...); err != nil {
				env.UI.Warn("puppet_apply: %v", err)
			}
		}()
	}
	env.UI.Say("puppet_apply: uploading the manifest to %s", stage.Dir)
	manifest := path.Join("manifests", cfgtool.LocalName(c.ManifestFile))
	if _, err := stage.Upload(ctx, manifest, strings.TrimSuffix(c.ManifestFile, "/")); err != nil {
		return err
	}
	var args []string
	if len(c.ModulePaths) > 0 {
		var dirs []string
		for i, m := range c.ModulePaths {
			name := path.Join("modules", strconv.Itoa(i))
			if _, err := stage.UploadDir(ctx, name, m); err != nil {
				return err
			}
			dirs = append(dirs, stage.CmdPath(name))
		}
		args = append(args, "--modulepath="+strings.Join(dirs, ":"))
	}
	if c.HieraConfigPath != "" {
		if err := a.uploadHiera(ctx, stage); err != nil {
			return err
		}
		args = append(args, "--hiera_config="+stage.CmdPath("hiera/hiera.yaml"))
	}
	args = append(args, "--color=false")
	args = append(args, c.ExtraArguments...)
	line, err := a.commandLine(ctx, env, stage, manifest, args)
	if err != nil {
		return err
	}
	return cfgtool.Attempts(ctx, env.UI, "puppet apply", c.MaxRetries, func(ctx context.Context) error {
		return a.run(ctx, env, line)
	})
}

// commandLine fills in execute_command.
func (a *Apply) commandLine(ctx context.Context, env *engine.ProvisionEnv, stage *cfgtool.Stage, manifest string, args []string) (string, error) {
	c := a.cfg
	sudo, err := cfgtool.Sudo(ctx, env.Comm)
	if err != nil {
		return "", err
	}
	facter := ""
	if len(c.Facter) > 0 {
		var vars []string
		for _, k := range slices.Sorted(maps.Keys(c.Facter)) {
			vars = append(vars, "FACTER_"+k+"="+shellquote.Quote(c.Facter[k]))
		}
		facter = "env " + strings.Join(vars, " ") + " "
	}
	quoted := ""
	for _, a := range args {
		quoted += shellquote.Quote(a) + " "
	}
	workDir := c.WorkingDirectory
	if workDir == "" {
		workDir = stage.CmdPath("")
	}
	line, err := provision.ExpandPlaceholders(c.ExecuteCommand, map[string]string{
		"working_dir": shellquote.Quote(workDir),
		"sudo":        sudo,
		"facter":      facter,
		"args":        quoted,
		"manifest":    shellquote.Quote(stage.CmdPath(manifest)),
	})
	if err != nil {
		return "", fmt.Errorf("execute_command: %w", err)
	}
	return line, nil
}

// run runs Puppet once.
func (a *Apply) run(ctx context.Context, env *engine.ProvisionEnv, line string) error {
	var mu sync.Mutex
	var errors []string
	keep := func(stream string) *cfgtool.Lines {
		return cfgtool.NewLines(8, func(l string) {
			cfgtool.Emit(env.UI, stream, l)
			if strings.HasPrefix(l, "Error: ") {
				mu.Lock()
				errors = append(errors, l)
				mu.Unlock()
			}
		})
	}
	stdout, stderr := keep("stdout"), keep("stderr")
	env.UI.Say("puppet_apply: running %s", line)
	status, err := env.Comm.Run(ctx, &engine.Command{Command: line, Stdout: stdout, Stderr: stderr})
	stdout.Close()
	stderr.Close()
	if err != nil {
		return fmt.Errorf("puppet apply: %w", err)
	}
	if slices.Contains(a.cfg.ValidExitCodes, status) {
		return nil
	}
	if status == 127 && len(errors) == 0 {
		return cfgtool.Permanent(fmt.Errorf("puppet apply exited with status 127: Puppet is not installed on the machine (set install = True, or install it in an earlier provisioner); last lines of stderr:%s", cfgtool.Indent(stderr.Last())))
	}
	if errs := failures(errors); len(errs) > 0 {
		return fmt.Errorf("puppet apply failed (exit status %d):%s", status, cfgtool.Indent(errs))
	}
	return fmt.Errorf("puppet apply exited with status %d (valid: %s); last lines of stderr:%s", status, exitCodes(a.cfg.ValidExitCodes), cfgtool.Indent(stderr.Last()))
}

// maxErrors bounds the Error: lines quoted in a failure.
const maxErrors = 20

// failures picks the Error: lines that say why a run failed: each once,
// and Facter's complaints (a fact it could not read) only when there is
// nothing else.
func failures(lines []string) []string {
	var own, facter []string
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			continue
		}
		seen[l] = true
		if strings.HasPrefix(l, "Error: Facter:") {
			facter = append(facter, l)
		} else {
			own = append(own, l)
		}
	}
	if len(own) == 0 {
		own = facter
	}
	if len(own) > maxErrors {
		own = append(own[:maxErrors], fmt.Sprintf("(and %d more Error: lines in the build's log)", len(own)-maxErrors))
	}
	return own
}

func exitCodes(codes []int) string {
	s := make([]string, len(codes))
	for i, c := range codes {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ", ")
}

// uploadHiera uploads hiera_config_path as hiera/hiera.yaml with the data
// directories it names relative to itself.
func (a *Apply) uploadHiera(ctx context.Context, stage *cfgtool.Stage) error {
	file := a.cfg.HieraConfigPath
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("hiera_config_path: %w", err)
	}
	dirs, err := hieraDataDirs(data)
	if err != nil {
		return fmt.Errorf("hiera_config_path %s: %v", file, err)
	}
	if _, err := stage.Write(ctx, "hiera/hiera.yaml", data, 0o644); err != nil {
		return err
	}
	for _, d := range dirs {
		local := filepath.Join(filepath.Dir(file), filepath.FromSlash(d))
		if fi, err := os.Stat(local); err != nil || !fi.IsDir() {
			continue // Hiera skips a missing data directory too
		}
		if _, err := stage.UploadDir(ctx, path.Join("hiera", d), local); err != nil {
			return err
		}
	}
	return nil
}

// hieraDataDirs returns the relative data directories a hiera.yaml
// (version 5) names: defaults' datadir ("data" when unset) and each
// hierarchy level's.
func hieraDataDirs(data []byte) ([]string, error) {
	var h struct {
		Version  int `yaml:"version"`
		Defaults struct {
			Datadir string `yaml:"datadir"`
		} `yaml:"defaults"`
		Hierarchy []struct {
			Datadir string `yaml:"datadir"`
		} `yaml:"hierarchy"`
	}
	if err := yaml.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("is not YAML: %v", err)
	}
	if h.Version != 5 {
		return nil, fmt.Errorf("is Hiera version %d: puppet_apply uploads version 5 configurations (version: 5)", h.Version)
	}
	seen := map[string]bool{}
	var out []string
	add := func(d string) {
		d = path.Clean(filepath.ToSlash(d))
		if d == "" || path.IsAbs(d) || d == ".." || strings.HasPrefix(d, "../") || seen[d] {
			return
		}
		seen[d] = true
		out = append(out, d)
	}
	def := h.Defaults.Datadir
	if def == "" {
		def = "data"
	}
	add(def)
	for _, l := range h.Hierarchy {
		if l.Datadir != "" {
			add(l.Datadir)
		}
	}
	return out, nil
}
