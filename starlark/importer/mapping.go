package importer

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// kind says what a Packer plugin becomes.
type kind int

const (
	builderKind kind = iota
	provisionerKind
	postProcessorKind
)

// plugin is how one Packer builder, provisioner or post-processor maps
// onto an imgbuild builtin. Keys that both spell the same (imgbuild takes
// Packer's keyword names where the concept is the same) pass as they are;
// renamed and ignored keys are listed; the rest become TODO comments.
type plugin struct {
	packer  string
	builtin string
	kind    kind
	renames map[string]string
	// ignored are keys that have no effect in imgbuild, with why; they are
	// written as a comment, never silently dropped.
	ignored map[string]string
	// special names the keys the code converts (see convert.go), with how.
	special map[string]string
	// optional marks a builtin this binary may not have (ansible): without
	// it, the plugin is a TODO like an unknown one.
	optional bool
}

// communicatorKeys are ignored on every builder: SSH is imgbuild's
// communicator.
var communicatorIgnored = map[string]string{
	"communicator":            "imgbuild connects over SSH; communicator = \"ssh\" is the only choice",
	"ssh_pty":                 "imgbuild's SSH sessions need no pty",
	"pause_before_connecting": "not needed: imgbuild retries the SSH login",
}

var plugins = []*plugin{
	{packer: "amazon-ebs", builtin: "amazon_ebs", kind: builderKind,
		ignored: map[string]string{
			"access_key":                "credentials come from the AWS credential chain (AWS_ACCESS_KEY_ID, profile, role)",
			"secret_key":                "credentials come from the AWS credential chain (AWS_SECRET_ACCESS_KEY, profile, role)",
			"token":                     "credentials come from the AWS credential chain (AWS_SESSION_TOKEN)",
			"ssh_clear_authorized_keys": "imgbuild's temporary key pair is removed with the instance",
			"temporary_key_pair_name":   "imgbuild names its temporary key pair itself",
			"shutdown_behavior":         "imgbuild stops the instance before capturing and terminates it after",
			"ena_support":               "taken from the source AMI",
			"sriov_support":             "taken from the source AMI",
		},
		special: map[string]string{
			"source_ami_filter":            "source_ami = aws_ami(owners = ..., name = filters[\"name\"], filters = the other filters, most_recent = ...)",
			"security_group_id":            "security_group_ids = [id]",
			"subnet_filter":                "subnet_filter = its filters",
			"vpc_filter":                   "vpc_filter = its filters",
			"launch_block_device_mappings": "a list of dicts, one per block",
			"ami_block_device_mappings":    "a list of dicts, one per block",
			"metadata_options":             "a dict",
			"assume_role":                  "a dict",
		}},
	{packer: "vsphere-iso", builtin: "vsphere_iso", kind: builderKind,
		ignored: map[string]string{"http_bind_address": "the HTTP server listens on http_ip"},
		special: map[string]string{
			"storage":                     "a list of dicts; disk_thin_provisioned → thin",
			"network_adapters":            "a list of dicts",
			"disk_controller_type":        "the first of the list",
			"export":                      "a dict",
			"content_library_destination": "a dict",
			"boot_command":                "{{ .HTTPIP }} → {http_ip}, {{ .HTTPPort }} → {http_port}, {{ .Name }} → {vm_name}",
			"http_port_min":               "http_port = http_port_min when it equals http_port_max",
		}},
	{packer: "vsphere-clone", builtin: "vsphere_clone", kind: builderKind,
		special: map[string]string{
			"export":                      "a dict",
			"content_library_destination": "a dict",
			"customize":                   "a dict: linux_options a dict, network_interface a list of dicts, one per block",
		}},
	{packer: "qemu", builtin: "qemu", kind: builderKind,
		renames: map[string]string{"machine_type": "machine", "qemuargs": "qemu_args"},
		ignored: map[string]string{
			"vnc_bind_address": "no VNC server is opened: boot_command is typed through QMP",
		},
		special: map[string]string{
			"iso_url":      "disk = iso_url when disk_image = true; else the ISO installed from",
			"disk_image":   "see iso_url",
			"iso_checksum": "a TODO when disk_image = true (the disk's checksum is checked where it is made)",
			"disk_size":    "a number of MiB becomes \"<n>M\"",
			"qemuargs":     "qemu_args, the lists flattened",
			"headless":     "true is the default (no window) and is left out",
			"boot_command": "{{ .HTTPIP }} → {http_ip}, {{ .HTTPPort }} → {http_port}, {{ .Name }} → {vm_name}",
			"efi_boot":     "true → firmware = \"efi\" (Debian's OVMF)",
			"firmware":     "a file for QEMU's -bios: qemu_args = [\"-bios\", file] (first, with qemuargs); an absolute path only, and not with use_pflash = true",
		}},
	{packer: "null", builtin: "null", kind: builderKind},
	{packer: "shell", builtin: "shell", kind: provisionerKind,
		ignored: map[string]string{"skip_clean": "imgbuild's uploaded scripts remove themselves", "binary": "scripts are uploaded as they are"},
		special: map[string]string{
			"environment_vars": "env = {name: value} from the NAME=value strings",
			"execute_command":  "{{ .Path }} → {path}, {{ .Vars }} → {vars}",
		}},
	{packer: "file", builtin: "file", kind: provisionerKind},
	{packer: "shell-local", builtin: "shell_local", kind: provisionerKind,
		special: map[string]string{
			"environment_vars": "env = {name: value} from the NAME=value strings",
			"scripts":          "script = the one script; several are a TODO",
		}},
	{packer: "ansible", builtin: "ansible", kind: provisionerKind, optional: true,
		ignored: map[string]string{
			"use_sftp":                "imgbuild's SSH adapter serves both SFTP and SCP",
			"sftp_command":            "imgbuild's SSH adapter serves SFTP itself",
			"local_port":              "imgbuild's SSH adapter listens on a free port of 127.0.0.1",
			"ssh_host_key_file":       "imgbuild's SSH adapter makes a host key per run and pins it in the inventory's known_hosts",
			"ssh_authorized_key_file": "imgbuild's SSH adapter accepts only a one-time key it makes",
			"skip_version_check":      "imgbuild does not check Ansible's version",
		},
		special: map[string]string{
			"ansible_env_vars": "a dict from the NAME=value strings",
			"roles_path":       "a list: a literal is split at ':'",
			"collections_path": "a list: a literal is split at ':'",
		}},
	{packer: "ansible-local", builtin: "ansible_local", kind: provisionerKind,
		special: map[string]string{
			"inventory_groups": "a list: a literal is split at ','; another string becomes .split(\",\")",
			"playbook_files":   "playbook_file = the one playbook; several are a TODO (write one ansible_local() each)",
		}},
	{packer: "puppet-masterless", builtin: "puppet_apply", kind: provisionerKind,
		special: map[string]string{
			"execute_command":   "{{.WorkingDir}} → {working_dir}, {{if .Sudo}}sudo -E {{end}} → {sudo}, {{.FacterVars}} → {facter}, {{.ExtraArguments}} → {args} (which holds --modulepath and --hiera_config too), {{.ManifestFile}} → {manifest}; any other template action is a TODO",
			"prevent_sudo":      "false is the default; true removes {{if .Sudo}}...{{end}} from execute_command, and without an execute_command is a TODO (imgbuild runs sudo -n only when the machine's user is not root)",
			"ignore_exit_codes": "true → valid_exit_codes = list(range(256)): every exit status passes",
		}},
	{packer: "chef-solo", builtin: "chef_solo", kind: provisionerKind,
		special: map[string]string{
			"execute_command": "{{if .Sudo}}sudo {{end}} → {sudo}, {{.ConfigPath}} → {config}, {{.JsonPath}} → {json}; any other template action is a TODO",
			"install_command": "{{if .Sudo}}sudo {{end}} → {sudo}, {{if .Version}} -v {{.Version}}{{end}} → {version}; any other template action is a TODO",
			"prevent_sudo":    "as for puppet-masterless",
		}},
	{packer: "manifest", builtin: "manifest", kind: postProcessorKind},
	{packer: "checksum", builtin: "checksum", kind: postProcessorKind,
		special: map[string]string{"output": "{{.BuildName}} → {build}, {{.BuilderType}} → {driver}, {{.ChecksumType}} → {type}"}},
	{packer: "vagrant", builtin: "vagrant_box", kind: postProcessorKind,
		renames: map[string]string{"vagrantfile_template": "vagrantfile"},
		special: map[string]string{"output": "{{.BuildName}} → the build's name; {{.Provider}} → libvirt"}},
}

// commonProvisionerKeys are handled for every provisioner.
var commonProvisionerKeys = map[string]string{
	"only":     "the provisioner goes only into those builds' lists",
	"except":   "the provisioner goes into every other build's list",
	"override": "the build named gets its own copy with the overridden keys",
}

func pluginFor(packerType string, k kind) *plugin {
	for _, p := range plugins {
		if p.packer == packerType && p.kind == k {
			return p
		}
	}
	return nil
}

// functionMap documents how HCL functions and legacy template functions
// become Starlark; the translation itself is in expr.go and legacy.go.
var functionMap = [][2]string{
	{"timestamp()", "timestamp(): resolved once when the run starts, the same for every build"},
	{"formatdate(layout, t)", "formatdate(layout, t) (the same layouts)"},
	{"legacy_isotime(go layout), {{isotime \"layout\"}}", "timestamp().format(the layout in formatdate form)"},
	{"{{timestamp}} (legacy)", "timestamp().unix()"},
	{"uuidv4(), {{uuid}}", "run_id(): unique per run (the same for every build), not per call"},
	{"{{user `x`}}, var.x", "the variable x"},
	{"{{env `X`}} and env(\"X\") in a variable's default", "var(..., env = \"X\")"},
	{"local.x, locals", "x = ... (plain assignments, in dependency order)"},
	{"{{build_name}}, {{build_type}}, source.name, source.type, build.name", "the build's values, written out"},
	{"path.root, {{template_dir}}, path.cwd, {{pwd}}", "the template's directory, relative to the output"},
	{"file(p)", "read_file(p)"},
	{"templatefile(p, vars)", "template_file(p, vars): the same template syntax"},
	{"upper, lower, title, trimspace, chomp", ".upper(), .lower(), .title(), .strip(), .rstrip(\"\\n\")"},
	{"replace(s, a, b)", "s.replace(a, b) (a /regex/ is a TODO)"},
	{"join(sep, l), split(sep, s)", "sep.join(l), s.split(sep)"},
	{"format(f, ...)", "f % (...) for %s, %d, %v and %%"},
	{"length, lookup, contains, keys, values, concat, merge, min, max, sort, element, substr, coalesce", "len, .get, in, .keys(), .values(), +, dict(a, **b), min, max, sorted, l[i % len(l)], s[a:a+n], or"},
	{"tostring, tonumber, tolist, toset, tomap", "str, int (float when not whole), list, list, dict"},
	{"jsonencode, jsondecode", "json.encode, json.decode"},
	{"a ? b : c, &&, ||, !, [for x in l : f(x)], {for k, v in m : k => v}", "b if a else c, and, or, not, comprehensions"},
	{"dynamic \"block\" { for_each, content }", "a list comprehension of dicts"},
	{"variable validation { condition, error_message }", "var(validation = lambda ...)"},
	{"data \"amazon-ami\"", "aws_ami(...)"},
}

// Docs is the mapping table `imgbuild docs import` prints. has says which
// builtins this binary offers.
func Docs(has func(builtin string) bool) string {
	var b strings.Builder
	b.WriteString(`imgbuild import FILE.pkr.hcl | DIR | FILE.json [-o out.star]
  Writes an imgbuild description equivalent to a Packer template: HCL2
  templates (one file, or a directory of *.pkr.hcl) or legacy JSON
  templates. Each source a build block names becomes one builder call
  (named type.name, or build.type.name for a named build block, as Packer
  names builds); its provisioners and post-processors are written into
  each build's lists, with only, except and override applied. What cannot
  be mapped becomes a "# TODO(import): <original text>" comment and a
  warning; the import still succeeds and counts them.

  A build block's error-cleanup-provisioner (the top-level one in JSON)
  becomes error_cleanup = [...] on each of its builds: it runs on the
  machine when a provisioner fails, before the build is cleaned up, as in
  Packer. Its only, except and override apply as for any provisioner.

  Variables become var() with type, default, description, sensitive and
  validation; var-files (.pkrvars.hcl, .json) are given with --var-file as
  they are. Packer's templatefile() templates need no change: template_file
  uses the same syntax.

Builders, provisioners and post-processors:
`)
	for _, k := range []kind{builderKind, provisionerKind, postProcessorKind} {
		for _, p := range plugins {
			if p.kind != k {
				continue
			}
			target := p.builtin + "()"
			if p.optional && (has == nil || !has(p.builtin)) {
				target += " (not in this build of imgbuild: a TODO)"
			}
			fmt.Fprintf(&b, "  %-17s → %s\n", p.packer, target)
			for _, from := range slices.Sorted(maps.Keys(p.renames)) {
				if to := p.renames[from]; to != "" {
					fmt.Fprintf(&b, "      %s → %s\n", from, to)
				}
			}
			for _, key := range slices.Sorted(maps.Keys(p.special)) {
				fmt.Fprintf(&b, "      %s: %s\n", key, p.special[key])
			}
			ignored := map[string]string{}
			for k, v := range p.ignored {
				ignored[k] = v
			}
			if k == builderKind {
				for k, v := range communicatorIgnored {
					ignored[k] = v
				}
			}
			for _, key := range slices.Sorted(maps.Keys(ignored)) {
				fmt.Fprintf(&b, "      %s: ignored (%s)\n", key, ignored[key])
			}
		}
	}
	b.WriteString("  every provisioner:\n")
	for _, key := range slices.Sorted(maps.Keys(commonProvisionerKeys)) {
		fmt.Fprintf(&b, "      %s: %s\n", key, commonProvisionerKeys[key])
	}
	b.WriteString("  Other keys spelled the same in both pass as they are; the rest are TODOs.\n  Any other builder, provisioner or post-processor is a TODO.\n\nExpressions and functions:\n")
	for _, f := range functionMap {
		fmt.Fprintf(&b, "  %s\n      → %s\n", f[0], f[1])
	}
	b.WriteString("  Any other function is a TODO, and so is what uses it.\n")
	return b.String()
}
