package ansible

import (
	"time"

	"github.com/imgbuild/imgbuild/drivers/provision"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
)

// Shared are the keywords ansible() and ansible_local() have in common.
type Shared struct {
	PlaybookFile   string                 `kw:"playbook_file,required" path:"file" doc:"The playbook to run."`
	PlaybookDir    string                 `kw:"playbook_dir" path:"dir" doc:"The playbook's directory tree (roles/, group_vars/, files/, ansible.cfg): ansible-playbook runs in it; default: the directory playbook_file is in."`
	Command        string                 `kw:"command" default:"ansible-playbook" doc:"The program that runs playbooks."`
	ExtraArguments []string               `kw:"extra_arguments" doc:"More arguments for ansible-playbook, each one word (\"--tags\", \"web\"); never put secrets here: use extra_vars."`
	ExtraVars      map[string]value.Value `kw:"extra_vars" doc:"Variables for the playbook, of any type, with the highest precedence: given to ansible-playbook in a file of mode 0600 (-e @file), never on its command line."`
	AnsibleEnvVars map[string]string      `kw:"ansible_env_vars" doc:"Environment variables for ansible-playbook (ANSIBLE_FORCE_COLOR, ANSIBLE_STDOUT_CALLBACK, ...)."`
	HostAlias      string                 `kw:"host_alias" default:"default" doc:"The machine's name in the inventory: the playbook's hosts: names it (or a group, or all)."`
	GalaxyFile     string                 `kw:"galaxy_file" path:"file" doc:"A requirements file (roles and collections) that ansible-galaxy installs before the playbook runs; relative src paths are taken from its directory, so local tarballs work offline."`
	GalaxyCommand  string                 `kw:"galaxy_command" default:"ansible-galaxy" doc:"The program that installs galaxy_file."`
	GalaxyOffline  bool                   `kw:"galaxy_offline" default:"False" doc:"Install collections without asking a Galaxy server (ansible-galaxy --offline): every requirement must be a local path or tarball."`
	Timeout        time.Duration          `kw:"timeout" doc:"Fail if the provisioner takes longer than this (\"30m\"); 0 means no limit."`
	MaxRetries     int                    `kw:"max_retries" doc:"Run a failed playbook again, up to this many more times."`
}

// Config is ansible()'s configuration.
type Config struct {
	Shared                `kw:",squash"`
	RolesPath             []string               `kw:"roles_path" path:"dir" doc:"Directories of roles for the playbook, searched before Ansible's own (ANSIBLE_ROLES_PATH); galaxy_file's roles come first."`
	CollectionsPath       []string               `kw:"collections_path" path:"dir" doc:"Directories of collections, searched before Ansible's own (ANSIBLE_COLLECTIONS_PATH); galaxy_file's collections come first."`
	Groups                []string               `kw:"groups" doc:"Inventory groups the machine is in."`
	User                  string                 `kw:"user" doc:"The inventory's ansible_user; default: the user imgbuild reaches the machine as (root in a chroot)."`
	AnsibleCfg            string                 `kw:"ansible_cfg" path:"file" doc:"An ansible.cfg for the run (ANSIBLE_CONFIG); default: the one in playbook_dir, if any."`
	InventoryExtra        map[string]value.Value `kw:"inventory_extra" doc:"More inventory variables of the machine's host (ansible_python_interpreter = \"/usr/bin/python3\", ...)."`
	Become                bool                   `kw:"become" default:"False" doc:"Run the tasks as root through sudo (--become), for a login user that is not root."`
	BecomeUser            string                 `kw:"become_user" doc:"The user become switches to (--become-user); default root."`
	UseProxy              bool                   `kw:"use_proxy" default:"True" doc:"Reach the machine through imgbuild's SSH adapter on 127.0.0.1, which works with every builder; False connects ansible-playbook straight to an SSH machine."`
	provision.BuildFilter `kw:",squash"`
}

// Validate implements schema.Validator.
func (c *Config) Validate(deferred schema.Deferred) error {
	if err := c.Shared.validate(deferred, "groups", c.Groups); err != nil {
		return err
	}
	if err := checkVars("inventory_extra", c.InventoryExtra, "reach the machine"); err != nil {
		return err
	}
	if c.BecomeUser != "" && !c.Become {
		return schema.Errorf("become_user", "is set but become is not: set become = True to switch to %s", c.BecomeUser)
	}
	return c.BuildFilter.Validate()
}

// validate checks what ansible() and ansible_local() both have, then
// host_alias with the machine's inventory groups (groups, set with the
// keyword groupsKW).
func (s *Shared) validate(deferred schema.Deferred, groupsKW string, groups []string) error {
	if s.Command == "" && !deferred.Has("command") {
		return schema.Errorf("command", "is empty: name the program that runs playbooks (ansible-playbook)")
	}
	if s.GalaxyCommand == "" && !deferred.Has("galaxy_command") {
		return schema.Errorf("galaxy_command", "is empty: name the program that installs roles (ansible-galaxy)")
	}
	if err := checkVars("extra_vars", s.ExtraVars, "reach the machine"); err != nil {
		return err
	}
	if err := checkEnvVars("ansible_env_vars", s.AnsibleEnvVars); err != nil {
		return err
	}
	if s.GalaxyOffline && s.GalaxyFile == "" && !deferred.Has("galaxy_file") {
		return schema.Errorf("galaxy_offline", "is set but galaxy_file is not: it says how to install galaxy_file")
	}
	if s.MaxRetries < 0 {
		return schema.Errorf("max_retries", "%d is negative", s.MaxRetries)
	}
	if !deferred.Has("host_alias") && !deferred.Has(groupsKW) {
		return checkNames(s.HostAlias, groupsKW, groups)
	}
	return nil
}

// Def returns ansible()'s declaration.
func Def() *engine.ProvisionerDef {
	return provision.Def("ansible",
		"Runs an Ansible playbook on this machine against the build's machine, which it reaches through imgbuild's SSH adapter whatever the builder (SSH, a chroot, a directory); each task's output streams, and a failed task fails the build with its name and message.",
		func(cfg *Config) engine.Provisioner { return &Ansible{cfg: cfg} })
}

// Register adds ansible() and ansible_local() to r.
func Register(r *engine.Registry) {
	r.AddProvisioner(Def())
	r.AddProvisioner(LocalDef())
}
