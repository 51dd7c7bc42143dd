package importer

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/bazelbuild/buildtools/build"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// keywords converts a plugin block's body into keyword arguments of its
// builtin, with the TODO and note comments for what did not map.
func (c *converter) keywords(s *scope, p *plugin, body *hclsyntax.Body) ([]build.Expr, []build.Comment) {
	target := c.opts.Builtins[p.builtin]
	var args []build.Expr
	var todos []build.Comment
	set := func(k string, x build.Expr) { args = append(args, kwarg(k, x)) }
	attrs := map[string]*hclsyntax.Attribute{}
	for _, a := range sortedAttrs(body) {
		attrs[a.Name] = a
	}
	for _, a := range sortedAttrs(body) {
		key := a.Name
		if why, ok := p.ignored[key]; ok || p.kind == builderKind && communicatorIgnored[key] != "" {
			if !ok {
				why = communicatorIgnored[key]
			}
			todos = append(todos, note("ignored: %s (%s)", oneLine(c.text(a.SrcRange)), why))
			continue
		}
		if to, ok := p.renames[key]; ok {
			key = to
		}
		x, t := c.attrExpr(s, a)
		if t != nil {
			todos = append(todos, t...)
			continue
		}
		x, why := c.special(s, p, key, x, attrs)
		switch {
		case why == "skip":
			continue
		case strings.HasPrefix(why, "ignored: "):
			todos = append(todos, note("ignored: %s (%s)", oneLine(c.text(a.SrcRange)), strings.TrimPrefix(why, "ignored: ")))
			continue
		case why != "":
			todos = append(todos, c.todo(a.SrcRange, why)...)
			continue
		}
		if strings.HasPrefix(key, "=") { // special gave another keyword
			key = strings.TrimPrefix(key, "=")
		}
		if nk, ok := x.(*build.AssignExpr); ok {
			key, x = nk.LHS.(*build.Ident).Name, nk.RHS
		}
		if _, ok := target[key]; !ok {
			todos = append(todos, c.todo(a.SrcRange, fmt.Sprintf("%s() has no keyword %q", p.builtin, a.Name))...)
			continue
		}
		if pathKeys[key] {
			x = c.relPaths(x)
		}
		x = coerce(s, x, target[key])
		if left := leftoverTemplate(x); left != "" {
			todos = append(todos, c.todo(a.SrcRange, fmt.Sprintf("the Packer template %s in %s is not mapped", left, a.Name))...)
			continue
		}
		if argIndex(args, key) >= 0 {
			// Two Packer keys for one keyword (security_group_id and
			// security_group_ids, playbook_file and playbook_files).
			todos = append(todos, c.todo(a.SrcRange, fmt.Sprintf("%s would set %s() keyword %s a second time", a.Name, p.builtin, key))...)
			continue
		}
		set(key, x)
	}
	if p.kind == builderKind && (strings.HasPrefix(p.builtin, "vsphere_") || p.builtin == "null") && attrs["ssh_host_key"] == nil && attrs["ssh_known_hosts"] == nil && attrs["ssh_insecure_ignore_host_key"] == nil {
		set("ssh_insecure_ignore_host_key", ident("True"))
		todos = append(todos, note("Packer does not verify the machine's host key; pin ssh_host_key (or ssh_known_hosts) to do better."))
	}
	for _, blk := range body.Blocks {
		x, key, t := c.block(s, p, blk)
		todos = append(todos, t...)
		if x == nil {
			continue
		}
		if i := argIndex(args, key); i >= 0 {
			// Repeated blocks make one list.
			if l, ok := args[i].(*build.AssignExpr).RHS.(*build.ListExpr); ok {
				if nl, ok := x.(*build.ListExpr); ok {
					l.List = append(l.List, nl.List...)
					continue
				}
			}
			todos = append(todos, c.todo(blk.Range(), fmt.Sprintf("a second %s block is not mapped", blk.Type))...)
			continue
		}
		set(key, x)
	}
	return args, todos
}

func argIndex(args []build.Expr, key string) int {
	for i, a := range args {
		if as, ok := a.(*build.AssignExpr); ok && as.LHS.(*build.Ident).Name == key {
			return i
		}
	}
	return -1
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	return s
}

// pathKeys name files on this machine: relative ones are made relative to
// the output's directory.
var pathKeys = map[string]bool{"script": true, "scripts": true, "source": true, "sources": true,
	"user_data_file": true, "http_directory": true, "vagrantfile": true, "playbook_file": true, "disk": true,
	"playbook_dir": true, "galaxy_file": true, "roles_path": true, "collections_path": true,
	"manifest_file": true, "module_paths": true, "hiera_config_path": true,
	"cookbook_paths": true, "data_bags_path": true, "environments_path": true, "encrypted_data_bag_secret_path": true}

// relPaths rewrites relative path literals in x to be relative to the
// output rather than to the template's directory.
func (c *converter) relPaths(x build.Expr) build.Expr {
	root := c.rootDir()
	return mapStrings(x, func(p string) string {
		if strings.HasPrefix(p, "./") {
			p = strings.TrimPrefix(p, "./")
		}
		if p == "" || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "~") || strings.Contains(p, "://") || root == "." {
			return p
		}
		if strings.HasPrefix(p, root+"/") {
			return p
		}
		return root + "/" + p
	})
}

// mapStrings returns x with every string literal in it replaced by f's.
func mapStrings(x build.Expr, f func(string) string) build.Expr {
	build.Edit(x, func(e build.Expr, stk []build.Expr) build.Expr {
		if s, ok := e.(*build.StringExpr); ok {
			return str(f(s.Value))
		}
		return nil
	})
	if s, ok := x.(*build.StringExpr); ok {
		return str(f(s.Value))
	}
	return x
}

var packerField = regexp.MustCompile(`\{\{\s*\.?([A-Za-z_]+)\s*\}\}`)

// leftoverTemplate returns a Packer template action left in a string.
func leftoverTemplate(x build.Expr) string {
	found := ""
	build.Walk(x, func(e build.Expr, _ []build.Expr) {
		if s, ok := e.(*build.StringExpr); ok && found == "" {
			if m := packerField.FindString(s.Value); m != "" {
				found = m
			}
		}
	})
	if s, ok := x.(*build.StringExpr); ok && found == "" {
		found = packerField.FindString(s.Value)
	}
	return found
}

// placeholders rewrites Packer's {{ .Field }} into imgbuild's {field}.
func placeholders(x build.Expr, m map[string]string) build.Expr {
	return mapStrings(x, func(s string) string {
		return packerField.ReplaceAllStringFunc(s, func(t string) string {
			name := packerField.FindStringSubmatch(t)[1]
			if to, ok := m[name]; ok {
				return to
			}
			return t
		})
	})
}

// special converts the keys that do not map one to one. It returns the
// value to set (an AssignExpr when the keyword changes), "skip" when
// another key's conversion took care of it, "ignored: why" for a key
// that changes nothing in imgbuild (written as a comment), or why it
// cannot be mapped.
func (c *converter) special(s *scope, p *plugin, key string, x build.Expr, attrs map[string]*hclsyntax.Attribute) (build.Expr, string) {
	switch p.builtin + "." + key {
	case "amazon_ebs.security_group_id":
		return kwarg("security_group_ids", list(x)), ""
	case "vsphere_iso.boot_command", "qemu.boot_command":
		return placeholders(x, map[string]string{"HTTPIP": "{http_ip}", "HTTPPort": "{http_port}", "Name": "{vm_name}"}), ""
	case "vsphere_iso.disk_controller_type":
		if l, ok := x.(*build.ListExpr); ok {
			if len(l.List) != 1 {
				return nil, "several disk controllers are not mapped (imgbuild has one)"
			}
			return l.List[0], ""
		}
		return index(paren(x), num("0")), ""
	case "qemu.disk_image":
		return nil, "skip"
	case "qemu.iso_url":
		if d := attrs["disk_image"]; d != nil {
			if v, diags := d.Expr.Value(nil); !diags.HasErrors() && v.True() {
				return kwarg("disk", x), ""
			}
		}
		return x, ""
	case "qemu.iso_checksum":
		if literalBool(attrs["disk_image"]) != "true" {
			return x, ""
		}
		return nil, "the disk's checksum is not checked by imgbuild's qemu; check the download where it is made"
	case "qemu.headless":
		if literalBool(attrs["headless"]) == "true" {
			return nil, "ignored: the default, no window; headless = False opens one"
		}
	case "qemu.efi_boot":
		switch literalBool(attrs["efi_boot"]) {
		case "true":
			return kwarg("firmware", str("efi")), ""
		case "false":
			return nil, "ignored: the default, firmware = \"bios\""
		}
		return nil, "an efi_boot that is not a literal true or false is not mapped"
	case "qemu.disk_size":
		if l, ok := x.(*build.LiteralExpr); ok {
			return str(l.Token + "M"), ""
		}
		return x, ""
	case "qemu.qemu_args":
		flat, ok := flatQemuArgs(x)
		if !ok {
			return nil, "qemuargs that are not a literal list of lists are not mapped"
		}
		if fw := attrs["firmware"]; fw != nil && literalBool(attrs["use_pflash"]) != "true" {
			if fx, t := c.attrExpr(s, fw); t == nil && firmwarePath(fx) == "" {
				// Packer puts -bios before qemuargs.
				flat.List = append([]build.Expr{str("-bios"), fx}, flat.List...)
			}
		}
		return flat, ""
	case "qemu.firmware":
		// Packer's firmware is a file given to QEMU as -bios; qemu()'s
		// firmware names one (bios or efi), so the file goes in qemu_args.
		if literalBool(attrs["use_pflash"]) == "true" {
			return nil, "firmware with use_pflash = true (the file loaded as flash) is not mapped: firmware = \"efi\" boots Debian's OVMF from flash, or give the -drive if=pflash arguments in qemu_args"
		}
		if why := firmwarePath(x); why != "" {
			return nil, why
		}
		if q := attrs["qemuargs"]; q != nil {
			if qx, t := c.attrExpr(s, q); t == nil {
				if _, ok := flatQemuArgs(qx); ok {
					return nil, "skip" // in qemu_args, with qemuargs
				}
			}
			return nil, "firmware is not mapped beside qemuargs that are not a literal list of lists: add \"-bios\" and the file to qemu_args"
		}
		return kwarg("qemu_args", list(str("-bios"), x)), ""
	case "shell.environment_vars", "shell_local.environment_vars":
		return kwarg("env", envDict(x)), ""
	case "shell.execute_command":
		return placeholders(x, map[string]string{"Path": "{path}", "Vars": "{vars}"}), ""
	case "shell_local.scripts":
		if l, ok := x.(*build.ListExpr); ok && len(l.List) == 1 {
			return kwarg("script", l.List[0]), ""
		}
		return nil, "shell_local() runs one script; several are not mapped (write one shell_local() each)"
	case "ansible.ansible_env_vars", "ansible_local.ansible_env_vars":
		return envDict(x), ""
	case "ansible.roles_path", "ansible.collections_path":
		return splitList(x, ":", false), ""
	case "ansible_local.inventory_groups":
		return splitList(x, ",", true), ""
	case "ansible_local.playbook_files":
		if l, ok := x.(*build.ListExpr); ok && len(l.List) == 1 {
			return kwarg("playbook_file", l.List[0]), ""
		}
		return nil, "ansible_local() runs one playbook; several are not mapped (write one ansible_local() each)"
	case "puppet_apply.execute_command":
		return cfgCommand(x, attrs, puppetPlaceholders, "{working_dir}, {sudo}, {facter}, {args} and {manifest}")
	case "chef_solo.execute_command":
		return cfgCommand(x, attrs, chefPlaceholders, "{sudo}, {config} and {json}")
	case "chef_solo.install_command":
		return cfgCommand(x, attrs, chefPlaceholders, "{sudo} and {version}")
	case "puppet_apply.prevent_sudo", "chef_solo.prevent_sudo":
		switch literalBool(attrs["prevent_sudo"]) {
		case "false":
			return nil, "ignored: the default; imgbuild runs sudo -n when the machine's user is not root"
		case "true":
			if attrs["execute_command"] != nil {
				return nil, "ignored: Packer's {{if .Sudo}}...{{end}} is left out of execute_command"
			}
			return nil, "prevent_sudo = true is not mapped: imgbuild runs sudo -n only when the machine's user is not root; write an execute_command without {sudo} to never use it"
		}
		return nil, "a prevent_sudo that is not a literal true or false is not mapped"
	case "puppet_apply.ignore_exit_codes":
		switch literalBool(attrs["ignore_exit_codes"]) {
		case "false":
			return nil, "ignored: the default; valid_exit_codes says which exit statuses pass"
		case "true":
			return kwarg("valid_exit_codes", call(ident("list"), call(ident("range"), num("256")))), ""
		}
		return nil, "an ignore_exit_codes that is not a literal true or false is not mapped"
	case "puppet_apply.valid_exit_codes":
		if literalBool(attrs["ignore_exit_codes"]) == "true" {
			return nil, "ignore_exit_codes = true already accepts every exit status, so valid_exit_codes is not mapped"
		}
	case "checksum.output":
		return placeholders(x, map[string]string{"BuildName": "{build}", "BuilderType": "{driver}", "ChecksumType": "{type}"}), ""
	case "vagrant_box.output":
		return placeholders(x, map[string]string{"Provider": "libvirt", "BuildName": s.src.full}), ""
	}
	return x, ""
}

// splitList converts a string of names joined by sep (Packer's
// roles_path "a:b", inventory_groups "web,db") into a list. Only a literal
// is split at import; another expression is split when the description
// is read if splitLater, else it becomes a list of itself.
func splitList(x build.Expr, sep string, splitLater bool) build.Expr {
	switch x := x.(type) {
	case *build.ListExpr:
		return x
	case *build.StringExpr:
		l := list()
		for _, part := range strings.Split(x.Value, sep) {
			if part = strings.TrimSpace(part); part != "" {
				l.List = append(l.List, str(part))
			}
		}
		return l
	}
	if splitLater {
		return method(paren(x), "split", str(sep))
	}
	return list(x)
}

// literalBool returns "true" or "false" for an attribute that is that
// literal (or the string of it, as legacy templates write them), else "".
// flatQemuArgs flattens Packer's qemuargs, a list of lists, into
// qemu_args; false when x is not a literal list of lists.
func flatQemuArgs(x build.Expr) (*build.ListExpr, bool) {
	outer, ok := x.(*build.ListExpr)
	if !ok {
		return nil, false
	}
	flat := list()
	for _, e := range outer.List {
		inner, ok := e.(*build.ListExpr)
		if !ok {
			return nil, false
		}
		flat.List = append(flat.List, inner.List...)
	}
	return flat, true
}

// firmwarePath returns why Packer's firmware x cannot go into qemu_args
// as it is, or "": a literal path must be absolute, since QEMU opens it
// from wherever imgbuild runs.
func firmwarePath(x build.Expr) string {
	if l, ok := x.(*build.StringExpr); ok && !strings.HasPrefix(l.Value, "/") {
		return fmt.Sprintf("firmware %q is a relative path, which QEMU would open from wherever imgbuild runs: give the file's absolute path", l.Value)
	}
	return ""
}

func literalBool(a *hclsyntax.Attribute) string {
	if a == nil {
		return ""
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || v.IsNull() || !v.IsKnown() {
		return ""
	}
	switch v.Type().FriendlyName() {
	case "bool":
		if v.True() {
			return "true"
		}
		return "false"
	case "string":
		if s := v.AsString(); s == "true" || s == "false" {
			return s
		}
	}
	return ""
}

// A cfgPlaceholder is one of Packer's template idioms in a configuration
// tool's command line and the imgbuild placeholder it becomes.
type cfgPlaceholder struct {
	packer *regexp.Regexp
	to     string
}

// sudoIdiom is Packer's {{if .Sudo}}sudo {{end}}: imgbuild's {sudo} is
// "sudo -n " or "", with its space.
var sudoIdiom = regexp.MustCompile(`\{\{-?\s*if\s+\.Sudo\s*-?\}\}\s*sudo(\s+-E)?\s*\{\{-?\s*end\s*-?\}\}\s*`)

func field(name string) *regexp.Regexp {
	return regexp.MustCompile(`\{\{-?\s*\.` + name + `\s*-?\}\}`)
}

var puppetPlaceholders = []cfgPlaceholder{
	{field("WorkingDir"), "{working_dir}"},
	{regexp.MustCompile(field("FacterVars").String() + ` ?`), "{facter}"},
	{regexp.MustCompile(field("ExtraArguments").String() + ` ?`), "{args}"},
	{field("ManifestFile"), "{manifest}"},
}

var chefPlaceholders = []cfgPlaceholder{
	{field("ConfigPath"), "{config}"},
	{field("JsonPath"), "{json}"},
	{versionIdiom, "{version}"},
}

// versionIdiom is Packer's {{if .Version}} -v {{.Version}}{{end}}:
// imgbuild's {version} is " -v <version>" or "".
var versionIdiom = regexp.MustCompile(`\{\{-?\s*if\s+\.Version\s*-?\}\}(.*?)` + field("Version").String() + `\s*\{\{-?\s*end\s*-?\}\}`)

// cfgCommand rewrites a configuration tool's execute_command or
// install_command from Packer's template syntax to imgbuild's
// placeholders; with prevent_sudo = true the sudo idiom goes, as Packer's
// {{if .Sudo}} is then false. What is left of Packer's syntax makes it a
// TODO naming the placeholders imgbuild has.
func cfgCommand(x build.Expr, attrs map[string]*hclsyntax.Attribute, ps []cfgPlaceholder, have string) (build.Expr, string) {
	sudo := "{sudo}"
	if literalBool(attrs["prevent_sudo"]) == "true" {
		sudo = ""
	}
	left := ""
	x = mapStrings(x, func(s string) string {
		s = sudoIdiom.ReplaceAllString(s, sudo)
		for _, p := range ps {
			s = p.packer.ReplaceAllString(s, p.to)
		}
		if i := strings.Index(s, "{{"); i >= 0 && left == "" {
			left = s[i:]
			if j := strings.Index(left, "}}"); j >= 0 {
				left = left[:j+2]
			}
		}
		return s
	})
	if left != "" {
		return nil, fmt.Sprintf("the Packer template %s is not mapped: imgbuild's placeholders are %s", left, have)
	}
	return x, ""
}

// envDict turns ["A=b", ...] into {"A": "b"}, or dict() of the split
// strings when they are not literals.
func envDict(x build.Expr) build.Expr {
	if l, ok := x.(*build.ListExpr); ok {
		d := &build.DictExpr{}
		literal := true
		for _, e := range l.List {
			parts := plusParts(e)
			s, ok := parts[0].(*build.StringExpr)
			if !ok || !strings.Contains(s.Value, "=") {
				literal = false
				break
			}
			k, v, _ := strings.Cut(s.Value, "=")
			d.List = append(d.List, &build.KeyValueExpr{Key: str(k), Value: joinStrings(append([]build.Expr{str(v)}, parts[1:]...))})
		}
		if literal {
			return d
		}
	}
	kv := ident("kv")
	return call(ident("dict"), &build.Comprehension{Body: method(kv, "split", str("="), num("1")),
		Clauses: []build.Expr{&build.ForClause{Vars: kv, X: x}}})
}

// coerce converts a string (a legacy template's variables are all strings)
// for an int or bool keyword, as Packer's weak decoding does.
func coerce(s *scope, x build.Expr, typ string) build.Expr {
	isString := false
	switch x := x.(type) {
	case *build.StringExpr:
		isString = true
	case *build.Ident:
		isString = s.c.kinds[x.Name] == "string"
	}
	if !isString {
		return x
	}
	switch typ {
	case "int":
		return call(ident("int"), x)
	case "bool":
		return &build.ParenExpr{X: binary(x, "==", str("true"))}
	}
	return x
}

// plusParts splits a + chain into its operands.
func plusParts(x build.Expr) []build.Expr {
	if b, ok := x.(*build.BinaryExpr); ok && b.Op == "+" {
		return append(plusParts(b.X), b.Y)
	}
	return []build.Expr{x}
}

// block converts a nested block: a dict, one element of a list of dicts,
// a dynamic block's comprehension, or source_ami_filter's lookup.
func (c *converter) block(s *scope, p *plugin, blk *hclsyntax.Block) (build.Expr, string, []build.Comment) {
	target := c.opts.Builtins[p.builtin]
	typ := blk.Type
	if typ == "dynamic" {
		return c.dynamic(s, p, blk)
	}
	switch p.builtin + "." + typ {
	case "amazon_ebs.source_ami_filter":
		x, todos := c.amiLookup(s, blk.Body)
		if x == nil {
			return nil, "", append(todos, c.todo(blk.Range(), "this source_ami_filter is not mapped")...)
		}
		return x, "source_ami", todos
	case "amazon_ebs.subnet_filter", "amazon_ebs.vpc_filter":
		var todos []build.Comment
		var filters build.Expr
		for _, a := range sortedAttrs(blk.Body) {
			if a.Name != "filters" {
				todos = append(todos, note("ignored: %s (imgbuild picks the subnet with the most free addresses)", oneLine(c.text(a.SrcRange))))
				continue
			}
			x, t := c.attrExpr(s, a)
			todos = append(todos, t...)
			filters = x
		}
		if filters == nil {
			return nil, "", todos
		}
		return filters, typ, todos
	}
	t, ok := target[typ]
	if !ok {
		return nil, "", c.todo(blk.Range(), fmt.Sprintf("%s() has no keyword %q", p.builtin, typ))
	}
	d, todos := c.blockDict(s, p, blk.Body)
	switch {
	case strings.HasPrefix(t, "list"):
		return &build.ListExpr{List: []build.Expr{d}, ForceMultiLine: true}, typ, todos
	case strings.HasPrefix(t, "dict"):
		return d, typ, todos
	}
	return nil, "", c.todo(blk.Range(), fmt.Sprintf("%s is a block in Packer but a %s in imgbuild", typ, t))
}

// blockRenames are keys of nested blocks that imgbuild spells otherwise.
var blockRenames = map[string]string{"disk_thin_provisioned": "thin"}

func (c *converter) blockDict(s *scope, p *plugin, body *hclsyntax.Body) (*build.DictExpr, []build.Comment) {
	d := &build.DictExpr{ForceMultiLine: false}
	var todos []build.Comment
	for _, a := range sortedAttrs(body) {
		x, t := c.attrExpr(s, a)
		if t != nil {
			todos = append(todos, t...)
			continue
		}
		key := a.Name
		if to, ok := blockRenames[key]; ok {
			key = to
		}
		d.List = append(d.List, &build.KeyValueExpr{Key: str(key), Value: x})
	}
	lists := map[string]*build.ListExpr{}
	for _, b := range body.Blocks {
		if b.Type == "dynamic" || len(b.Labels) > 0 {
			todos = append(todos, c.todo(b.Range(), fmt.Sprintf("a %s block inside a block is not mapped", b.Type))...)
			continue
		}
		inner, t := c.blockDict(s, p, b.Body)
		todos = append(todos, t...)
		if l := lists[b.Type]; l != nil {
			l.List = append(l.List, inner)
			continue
		}
		if nestedLists[b.Type] {
			lists[b.Type] = &build.ListExpr{List: []build.Expr{inner}}
			d.List = append(d.List, &build.KeyValueExpr{Key: str(b.Type), Value: lists[b.Type]})
			continue
		}
		if dictHas(d, b.Type) {
			todos = append(todos, c.todo(b.Range(), fmt.Sprintf("a second %s block is not mapped", b.Type))...)
			continue
		}
		d.List = append(d.List, &build.KeyValueExpr{Key: str(b.Type), Value: inner})
	}
	return d, todos
}

// nestedLists are the blocks inside blocks that Packer repeats, one per
// item (customize's network_interface, one per adapter): they become a
// list of dicts; other nested blocks become a dict.
var nestedLists = map[string]bool{"network_interface": true}

func dictHas(d *build.DictExpr, key string) bool {
	for _, kv := range d.List {
		if k, ok := kv.Key.(*build.StringExpr); ok && k.Value == key {
			return true
		}
	}
	return false
}

// dynamic converts dynamic "label" { for_each, iterator, content } into a
// comprehension of dicts.
func (c *converter) dynamic(s *scope, p *plugin, blk *hclsyntax.Block) (build.Expr, string, []build.Comment) {
	if len(blk.Labels) != 1 {
		return nil, "", c.todo(blk.Range(), "a dynamic block needs one label")
	}
	label := blk.Labels[0]
	fe := blk.Body.Attributes["for_each"]
	var content *hclsyntax.Block
	for _, b := range blk.Body.Blocks {
		if b.Type == "content" {
			content = b
		}
	}
	if fe == nil || content == nil {
		return nil, "", c.todo(blk.Range(), "a dynamic block needs for_each and content")
	}
	if t, ok := c.opts.Builtins[p.builtin][label]; !ok || !strings.HasPrefix(t, "list") {
		return nil, "", c.todo(blk.Range(), fmt.Sprintf("%s() has no list keyword %q for this dynamic block", p.builtin, label))
	}
	iter := label
	if it := blk.Body.Attributes["iterator"]; it != nil {
		if kw := hcl.ExprAsKeyword(it.Expr); kw != "" {
			iter = kw
		}
	}
	coll, err := s.expr(fe.Expr)
	if err != nil {
		return nil, "", c.todo(blk.Range(), err.Error())
	}
	val := c.name(strings.TrimSuffix(iter, "s"))
	key := c.name(val + "_key")
	inner := s.with(iter, key, val)
	d, todos := c.blockDict(inner, p, content.Body)
	if len(todos) > 0 {
		return nil, "", todos
	}
	var clause *build.ForClause
	if _, isDict := coll.(*build.DictExpr); isDict || s.kindOf(coll) == "dict" {
		clause = &build.ForClause{Vars: &build.TupleExpr{List: []build.Expr{ident(key), ident(val)}, NoBrackets: true}, X: method(paren(coll), "items")}
	} else {
		clause = &build.ForClause{Vars: &build.TupleExpr{List: []build.Expr{ident(key), ident(val)}, NoBrackets: true}, X: call(ident("enumerate"), coll)}
	}
	if en, ok := clause.X.(*build.CallExpr); ok && !usesName(d, key) {
		clause.Vars, clause.X = ident(val), en.List[0]
	}
	return &build.Comprehension{Body: d, Clauses: []build.Expr{clause}}, label, nil
}

func usesName(x build.Expr, name string) bool {
	found := false
	build.Walk(x, func(e build.Expr, _ []build.Expr) {
		if id, ok := e.(*build.Ident); ok && id.Name == name {
			found = true
		}
	})
	return found
}
