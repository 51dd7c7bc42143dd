package testinfra

import (
	"time"

	"github.com/imgbuild/imgbuild/drivers/provision"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// Name is the provisioner's name in descriptions.
const Name = "testinfra"

// DebianPackage is the package that installs testinfra and pytest for
// Debian's /usr/bin/python3.
const DebianPackage = "python3-testinfra"

// Config is testinfra()'s configuration.
type Config struct {
	TestFiles             []string          `kw:"test_files,required" path:"file" doc:"Testinfra test files (test_*.py) on this machine, relative to the workspace."`
	Python                string            `kw:"python" default:"/usr/bin/python3" doc:"Python interpreter that has testinfra and pytest; Debian's python3-testinfra installs them for /usr/bin/python3."`
	Sudo                  bool              `kw:"sudo" doc:"Run the tests' commands with sudo on the machine (testinfra --sudo)."`
	SudoUser              string            `kw:"sudo_user" doc:"With sudo: the user to run them as (testinfra --sudo-user); \"\" means root."`
	Keyword               string            `kw:"keyword" doc:"Run only the tests whose names match this pytest -k expression."`
	Marker                string            `kw:"marker" doc:"Run only the tests with this pytest -m marker expression."`
	ExtraArguments        []string          `kw:"extra_arguments" doc:"More arguments for pytest, before the test files."`
	Env                   map[string]string `kw:"env" doc:"Environment variables for pytest on this machine."`
	Timeout               time.Duration     `kw:"timeout" doc:"Fail if the tests take longer than this (\"10m\"); 0 means no limit of its own (a test's default timeout applies in tests = [...])."`
	provision.BuildFilter `kw:",squash"`
}

// Validate implements schema.Validator.
func (c *Config) Validate(deferred schema.Deferred) error {
	if len(c.TestFiles) == 0 && !deferred.Has("test_files") {
		return schema.Errorf("test_files", "is empty: name at least one testinfra test file, such as \"tests/test_nginx.py\"")
	}
	if c.Python == "" && !deferred.Has("python") {
		return schema.Errorf("python", "is empty: name the Python that has testinfra (/usr/bin/python3 with Debian's %s)", DebianPackage)
	}
	if c.SudoUser != "" && !c.Sudo {
		return schema.Errorf("sudo_user", "is set but sudo is not: set sudo = True to run the tests' commands as %s", c.SudoUser)
	}
	return c.BuildFilter.Validate()
}

// Def returns testinfra()'s declaration.
func Def() *engine.ProvisionerDef {
	return provision.Def(Name,
		"Runs testinfra test files (pytest) on this machine against the build's machine over SSH, with an ssh_config holding the host key imgbuild verified and the build's login keys; meant for tests = [...]. Each test's result streams, and a failing test fails with its name and pytest's reason.",
		func(cfg *Config) engine.Provisioner { return &Testinfra{cfg: cfg} })
}

// Register adds testinfra() to r.
func Register(r *engine.Registry) { r.AddProvisioner(Def()) }
