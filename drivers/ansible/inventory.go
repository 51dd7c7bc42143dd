package ansible

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/imgbuild/imgbuild/drivers/cfgtool"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
)

// inventory is the generated inventory: one host, in groups, with
// variables.
type inventory struct {
	host   string
	groups []string
	vars   map[string]any
}

// JSON renders it as a YAML inventory (JSON is YAML) that Ansible's yaml
// inventory plugin reads.
func (inv *inventory) JSON() ([]byte, error) {
	children := map[string]any{}
	for _, g := range inv.groups {
		children[g] = map[string]any{"hosts": map[string]any{inv.host: nil}}
	}
	all := map[string]any{"hosts": map[string]any{inv.host: inv.vars}}
	if len(children) > 0 {
		all["children"] = children
	}
	return json.MarshalIndent(map[string]any{"all": all}, "", "  ")
}

// writeFile writes data to dir/name with mode 0600 and returns its path.
func writeFile(dir, name string, data []byte) (string, error) {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return "", err
	}
	return p, nil
}

// varsFile renders extra variables as the JSON file given to
// ansible-playbook as -e @file: never on its command line, where any user
// of this machine could read them in /proc.
func varsFile(vars map[string]value.Value) ([]byte, error) {
	return json.MarshalIndent(cfgtool.PlainMap(vars), "", "  ")
}

var (
	varName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	hostName  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:-]*$`)
	envName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	falseWord = regexp.MustCompile(`(?i)^\s*(false|no|off|0|n|f)\s*$`)
)

// connectionVars are the inventory variables imgbuild sets to reach the
// machine: extra_vars and inventory_extra may not change them.
var connectionVars = []string{
	"ansible_host", "ansible_ssh_host", "ansible_port", "ansible_ssh_port", "ansible_user", "ansible_ssh_user",
	"ansible_connection", "ansible_ssh_private_key_file", "ansible_private_key_file",
	"ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_ssh_args",
	"ansible_ssh_host_key_checking", "ansible_host_key_checking",
}

// checkVars checks the names of a dict of Ansible variables.
func checkVars(kw string, vars map[string]value.Value, what string) error {
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if !varName.MatchString(k) {
			return schema.Errorf(kw, "%q is not a valid Ansible variable name (letters, digits and _, not starting with a digit)", k)
		}
		if slices.Contains(connectionVars, k) {
			return schema.Errorf(kw, "sets %s, which imgbuild sets itself to %s: leave it out (user = ... names the login user)", k, what)
		}
	}
	return nil
}

// checkEnvVars checks ansible_env_vars: valid names, and host key checking
// left on.
func checkEnvVars(kw string, env map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !envName.MatchString(k) {
			return schema.Errorf(kw, "%q is not a valid environment variable name (letters, digits and _, not starting with a digit)", k)
		}
		v := env[k]
		switch {
		case k == "ANSIBLE_HOST_KEY_CHECKING" && falseWord.MatchString(v):
			return schema.Errorf(kw, "turns host key checking off (ANSIBLE_HOST_KEY_CHECKING=%s): imgbuild gives Ansible the host key it verified, so checking works; leave it out", v)
		case strings.Contains(strings.ToLower(v), "stricthostkeychecking=no"), strings.Contains(v, "UserKnownHostsFile=/dev/null"):
			return schema.Errorf(kw, "%s turns host key checking off (%s): imgbuild gives Ansible the host key it verified, so checking works; leave that option out", k, v)
		}
	}
	return nil
}

// checkNames checks the host alias and the group names, which errors name
// by groupsKW (groups for ansible(), inventory_groups for ansible_local()).
func checkNames(hostAlias, groupsKW string, groups []string) error {
	if !hostName.MatchString(hostAlias) {
		return schema.Errorf("host_alias", "%q is not an inventory host name (letters, digits, _ . : -)", hostAlias)
	}
	for _, g := range groups {
		if !varName.MatchString(g) {
			return schema.Errorf(groupsKW, "%q is not a valid Ansible group name (letters, digits and _, not starting with a digit)", g)
		}
		if g == "all" || g == "ungrouped" {
			return schema.Errorf(groupsKW, "%q is a group every host is in already: leave it out", g)
		}
	}
	return nil
}

// envList turns a map of environment variables into KEY=VALUE entries,
// sorted.
func envList(env map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, fmt.Sprintf("%s=%s", k, env[k]))
	}
	return out
}
