package goss

import (
	"path"
	"time"

	"github.com/imgbuild/imgbuild/drivers/provision"
	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// Name is the provisioner's name in descriptions.
const Name = "goss"

// Config is goss()'s configuration.
type Config struct {
	GossPath              string            `kw:"goss_path" path:"file" doc:"The goss binary on this machine, for the build machine's OS and architecture (a goss-linux-amd64 release, or go build of github.com/goss-org/goss/cmd/goss): it is uploaded and run there. Required."`
	Tests                 []string          `kw:"tests" path:"file" doc:"Gossfiles (YAML) on this machine, relative to the workspace: each is uploaded, by its base name, next to goss. Required."`
	GossFile              string            `kw:"goss_file" doc:"Which of tests goss validates (goss -g), by its base name; the others are there for it to include. Default: the first of tests."`
	VarsFile              string            `kw:"vars_file" path:"file" doc:"A YAML or JSON file of variables for the gossfiles' templates, uploaded and given as --vars."`
	VarsInline            map[string]string `kw:"vars_inline" doc:"Variables for the templates given as --vars-inline (JSON); they override vars_file's."`
	VarsEnv               map[string]string `kw:"vars_env" doc:"Environment variables for goss on the machine (the templates read them as .Env)."`
	Format                string            `kw:"format" default:"json" enum:"json|documentation|json_oneline|junit|nagios|rspecish|silent|tap" doc:"goss validate's --format. With json, imgbuild reads the result: each check is shown on a line, and a failure lists the failed checks; with the others goss's output is shown as it is."`
	FormatOptions         string            `kw:"format_options" enum:"perfdata|verbose|pretty|sort" doc:"goss validate's --format-options."`
	RetryTimeout          time.Duration     `kw:"retry_timeout" default:"0s" doc:"goss validate's --retry-timeout: retry failing checks for this long (a service that is still starting)."`
	Sleep                 time.Duration     `kw:"sleep" default:"1s" doc:"goss validate's --sleep: the wait between retries."`
	Package               string            `kw:"package" enum:"apk|dpkg|pacman|rpm" doc:"goss's --package: the package manager its package checks ask; default: goss guesses."`
	UseSudo               bool              `kw:"use_sudo" default:"False" doc:"Run goss through sudo -n, for checks a login user that is not root cannot make."`
	RemoteFolder          string            `kw:"remote_folder" default:"/tmp" doc:"An existing directory on the machine in which goss() makes its own directory (imgbuild-goss-<random>, mode 0700) for goss and the gossfiles."`
	RemotePath            string            `kw:"remote_path" doc:"The directory on the machine goss and the gossfiles are uploaded to, instead of one made in remote_folder; one that exists is kept, and only what was uploaded is removed."`
	CleanRemotePath       bool              `kw:"clean_remote_path" default:"True" doc:"Remove what was uploaded once goss has run."`
	Timeout               time.Duration     `kw:"timeout" doc:"Fail if goss takes longer than this (\"5m\"); 0 means no limit of its own (a test's default timeout applies in tests = [...])."`
	provision.BuildFilter `kw:",squash"`
}

// Validate implements schema.Validator.
func (c *Config) Validate(deferred schema.Deferred) error {
	if c.GossPath == "" && !deferred.Has("goss_path") {
		return schema.Errorf("goss_path", "is not set: name the goss binary on this machine that goss() uploads and runs on the build's machine (a goss-linux-amd64 release of goss, or one made with go build of github.com/goss-org/goss/cmd/goss)")
	}
	if len(c.Tests) == 0 && !deferred.Has("tests") {
		return schema.Errorf("tests", "is empty: name at least one gossfile, such as \"goss/goss.yaml\"")
	}
	if c.GossFile != "" && !deferred.Has("goss_file") && !deferred.Has("tests") {
		names := c.testNames()
		found := false
		for _, n := range names {
			found = found || n == c.GossFile
		}
		if !found {
			msg := "%q is not one of tests (%v): name the gossfile to validate by its base name"
			if near := schema.Nearest(c.GossFile, names); near != "" {
				return schema.Errorf("goss_file", msg+" (did you mean %q?)", c.GossFile, names, near)
			}
			return schema.Errorf("goss_file", msg, c.GossFile, names)
		}
	}
	if !deferred.Has("tests") {
		seen := map[string]string{}
		for _, t := range c.Tests {
			n := path.Base(t)
			if other, ok := seen[n]; ok {
				return schema.Errorf("tests", "%q and %q have the same base name, and both would be uploaded as %s: rename one", other, t, n)
			}
			seen[n] = t
		}
	}
	if c.RemotePath != "" && !path.IsAbs(c.RemotePath) && !deferred.Has("remote_path") {
		return schema.Errorf("remote_path", "%q is not an absolute path on the machine", c.RemotePath)
	}
	if !path.IsAbs(c.RemoteFolder) && !deferred.Has("remote_folder") {
		return schema.Errorf("remote_folder", "%q is not an absolute path on the machine", c.RemoteFolder)
	}
	for k := range c.VarsEnv {
		if !shellquote.ValidName(k) {
			return schema.Errorf("vars_env", "%q is not an environment variable's name (letters, digits and _, not first a digit)", k)
		}
	}
	if c.RetryTimeout < 0 {
		return schema.Errorf("retry_timeout", "%s is negative", c.RetryTimeout)
	}
	if c.Sleep <= 0 {
		return schema.Errorf("sleep", "%s: the wait between retries must be more than 0", c.Sleep)
	}
	return c.BuildFilter.Validate()
}

// testNames are the base names tests are uploaded as.
func (c *Config) testNames() []string {
	out := make([]string, len(c.Tests))
	for i, t := range c.Tests {
		out[i] = path.Base(t)
	}
	return out
}

// Def returns goss()'s declaration.
func Def() *engine.ProvisionerDef {
	return provision.Def(Name,
		"Runs goss on the build's machine: uploads the goss binary named by goss_path and the gossfiles (tests), and runs goss validate there; meant for tests = [...]. A failure lists the checks that failed.",
		func(cfg *Config) engine.Provisioner { return &Goss{cfg: cfg} })
}

// Register adds goss() to r.
func Register(r *engine.Registry) { r.AddProvisioner(Def()) }
