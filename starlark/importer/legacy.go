package importer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template/parse"
)

// legacyToHCL rewrites a legacy JSON template as the HCL2 template Packer's
// hcl2_upgrade would write, which the HCL import then converts: variables,
// one source per builder, one build with every builder's source, the
// provisioners and post-processors. {{user `x`}} becomes ${var.x},
// {{timestamp}} ${legacy_timestamp_unix()}, {{isotime "..."}}
// ${legacy_isotime("...")}, {{uuid}} ${uuidv4()}, {{build_name}}
// ${source.name}, {{build_type}} ${source.type}, {{template_dir}}
// ${path.root}; the top-level error-cleanup-provisioner becomes the build's
// error-cleanup-provisioner block; {{env `X`}} is allowed in variables only, as in Packer.
// Anything else becomes ${legacy_unmapped("...")}, a TODO.
func legacyToHCL(path string, src []byte) ([]byte, error) {
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s:%s", path, jsonErr(src, err))
	}
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	sensitive := map[string]bool{}
	if raw, ok := doc["sensitive-variables"]; ok {
		var names []string
		if err := json.Unmarshal(raw, &names); err != nil {
			return nil, fmt.Errorf("%s: sensitive-variables must be a list of names", path)
		}
		for _, n := range names {
			sensitive[n] = true
		}
	}
	for _, key := range slices.Sorted(keysOf(doc)) {
		switch key {
		case "variables", "builders", "provisioners", "error-cleanup-provisioner", "post-processors", "sensitive-variables":
		case "description", "min_packer_version", "_comment":
			var s any
			_ = json.Unmarshal(doc[key], &s)
			w("# %s: %v\n", key, s)
		default:
			w("legacy_%s = %s\n", hclName(key), hclString(string(doc[key])))
		}
	}
	if raw, ok := doc["variables"]; ok {
		var vars map[string]any
		if err := decodeJSON(raw, &vars); err != nil {
			return nil, fmt.Errorf("%s: variables must be an object of names to values", path)
		}
		for _, name := range slices.Sorted(keysOf(vars)) {
			w("variable %q {\n", name)
			switch v := vars[name].(type) {
			case nil:
			case string:
				if env, ok := legacyEnv(v); ok {
					w("  default = env(%q)\n", env)
				} else {
					w("  type = string\n  default = %s\n", legacyValue(v, true))
				}
			default:
				w("  default = %s\n", legacyValue(v, true))
			}
			if sensitive[name] {
				w("  sensitive = true\n")
			}
			w("}\n")
		}
	}
	var builders []map[string]any
	if err := decodeJSON(doc["builders"], &builders); err != nil || len(builders) == 0 {
		return nil, fmt.Errorf("%s: a legacy template needs \"builders\", a list of objects with a \"type\"", path)
	}
	var names []string
	for i, bl := range builders {
		typ, _ := bl["type"].(string)
		if typ == "" {
			return nil, fmt.Errorf("%s: builders[%d] has no \"type\"", path, i)
		}
		name, _ := bl["name"].(string)
		if name == "" {
			name = typ
		}
		names = append(names, "source."+typ+"."+name)
		w("source %q %q {\n", typ, name)
		for _, k := range slices.Sorted(keysOf(bl)) {
			if k == "type" || k == "name" {
				continue
			}
			w("  %s = %s\n", hclName(k), legacyValue(bl[k], false))
		}
		w("}\n")
	}
	w("build {\n  sources = [%s]\n", strings.Join(names, ", "))
	var provs []map[string]any
	if raw, ok := doc["provisioners"]; ok {
		if err := decodeJSON(raw, &provs); err != nil {
			return nil, fmt.Errorf("%s: provisioners must be a list of objects", path)
		}
	}
	byName := map[string]string{}
	for i := range builders {
		byName[strings.Split(names[i], ".")[2]] = strings.TrimPrefix(names[i], "source.")
	}
	for _, p := range provs {
		legacyStep(w, "provisioner", p, byName)
	}
	// One object at the top, as Packer's JSON templates take it; hcl2_upgrade
	// writes it as the build's error-cleanup-provisioner block.
	if raw, ok := doc["error-cleanup-provisioner"]; ok {
		var p map[string]any
		if err := decodeJSON(raw, &p); err != nil {
			return nil, fmt.Errorf("%s: error-cleanup-provisioner must be one provisioner object with a \"type\"", path)
		}
		legacyStep(w, "error-cleanup-provisioner", p, byName)
	}
	if raw, ok := doc["post-processors"]; ok {
		var posts []any
		if err := decodeJSON(raw, &posts); err != nil {
			return nil, fmt.Errorf("%s: post-processors must be a list", path)
		}
		for _, p := range posts {
			if seq, ok := p.([]any); ok {
				w("  post-processors {\n")
				for _, e := range seq {
					legacyPost(w, e, byName)
				}
				w("  }\n")
				continue
			}
			legacyPost(w, p, byName)
		}
	}
	w("}\n")
	return b.Bytes(), nil
}

// legacyPost writes one post-processor of a legacy template: its type
// alone, or an object; anything else is passed over.
func legacyPost(w func(string, ...any), p any, byName map[string]string) {
	switch p := p.(type) {
	case string:
		legacyStep(w, "post-processor", map[string]any{"type": p}, byName)
	case map[string]any:
		legacyStep(w, "post-processor", p, byName)
	}
}

func legacyStep(w func(string, ...any), kind string, p map[string]any, byName map[string]string) {
	typ, _ := p["type"].(string)
	w("  %s %q {\n", kind, typ)
	for _, k := range slices.Sorted(keysOf(p)) {
		v := p[k]
		switch k {
		case "type":
			continue
		case "only", "except":
			// Legacy names builders; HCL names sources type.name.
			if l, ok := v.([]any); ok {
				var out []string
				for _, e := range l {
					if s, ok := e.(string); ok {
						if full, ok := byName[s]; ok {
							s = full
						}
						out = append(out, strconv.Quote(s))
					}
				}
				w("    %s = [%s]\n", k, strings.Join(out, ", "))
				continue
			}
		case "override":
			if m, ok := v.(map[string]any); ok {
				w("    override = {\n")
				for _, name := range slices.Sorted(keysOf(m)) {
					label := name
					if full, ok := byName[name]; ok {
						label = full
					}
					w("      %q = %s\n", label, legacyValue(m[name], false))
				}
				w("    }\n")
				continue
			}
		}
		w("    %s = %s\n", hclName(k), legacyValue(v, false))
	}
	w("  }\n")
}

func decodeJSON(raw json.RawMessage, v any) error {
	if raw == nil {
		return fmt.Errorf("missing")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

func keysOf[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// hclName quotes a key that is not an HCL identifier.
func hclName(k string) string {
	for i, r := range k {
		if !(r == '_' || r == '-' && i > 0 || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' && i > 0) {
			return "legacy_key_" + strconv.Itoa(len(k))
		}
	}
	return k
}

// legacyValue writes a JSON value as HCL, turning template strings into
// HCL templates.
func legacyValue(v any, inVariables bool) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return v.String()
	case string:
		return legacyString(v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = legacyValue(e, inVariables)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		var b strings.Builder
		b.WriteString("{\n")
		for _, k := range slices.Sorted(keysOf(v)) {
			fmt.Fprintf(&b, "    %s = %s\n", strconv.Quote(k), legacyValue(v[k], inVariables))
		}
		b.WriteString("  }")
		return b.String()
	}
	return "null"
}

// legacyEnv recognises a variable whose value is {{env `X`}}.
func legacyEnv(s string) (string, bool) {
	t, err := parse.Parse("t", s, "{{", "}}", legacyFuncs)
	if err != nil {
		return "", false
	}
	nodes := t["t"].Root.Nodes
	if len(nodes) != 1 {
		return "", false
	}
	a, ok := nodes[0].(*parse.ActionNode)
	if !ok || len(a.Pipe.Cmds) != 1 {
		return "", false
	}
	args := a.Pipe.Cmds[0].Args
	if len(args) == 2 && args[0].String() == "env" {
		if s, ok := args[1].(*parse.StringNode); ok {
			return s.Text, true
		}
	}
	return "", false
}

var legacyFuncs = map[string]any{}

func init() {
	for _, f := range []string{"user", "env", "timestamp", "isotime", "uuid", "build_name", "build_type",
		"template_dir", "pwd", "clean_resource_name", "clean_ami_name", "split", "replace", "replace_all",
		"lower", "upper", "packer_version", "consul_key", "vault", "aws_secretsmanager", "sed"} {
		legacyFuncs[f] = func() string { return "" }
	}
}

// legacyString converts a legacy template string into an HCL string.
func legacyString(s string) string {
	esc := func(lit string) string {
		q := strconv.Quote(lit)
		q = strings.ReplaceAll(q, "${", "$${")
		return strings.ReplaceAll(q, "%{", "%%{")
	}
	if !strings.Contains(s, "{{") {
		return esc(s)
	}
	t, err := parse.Parse("t", s, "{{", "}}", legacyFuncs)
	if err != nil {
		return `"${legacy_unmapped(` + strconv.Quote(s) + `)}"`
	}
	var b strings.Builder
	b.WriteString(`"`)
	for _, n := range t["t"].Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			q := esc(string(n.Text))
			b.WriteString(q[1 : len(q)-1])
		case *parse.ActionNode:
			b.WriteString(legacyAction(n))
		case *parse.IfNode:
			// The configuration tools' {{if .Sudo}} and {{if .Version}}
			// idioms stay, for their command lines (see cfgCommand).
			if text := n.String(); wholeMatch(sudoIdiom, text) || wholeMatch(versionIdiom, text) {
				q := esc(text)
				b.WriteString(q[1 : len(q)-1])
				continue
			}
			b.WriteString("${legacy_unmapped(" + strconv.Quote(n.String()) + ")}")
		default:
			b.WriteString("${legacy_unmapped(" + strconv.Quote(n.String()) + ")}")
		}
	}
	b.WriteString(`"`)
	return b.String()
}

// legacyAction converts one {{ ... }}; fields such as {{ .HTTPIP }} stay
// as they are, for the keys that take them.
func legacyAction(n *parse.ActionNode) string {
	unmapped := "${legacy_unmapped(" + strconv.Quote(n.String()) + ")}"
	if len(n.Pipe.Cmds) != 1 || len(n.Pipe.Decl) > 0 {
		return unmapped
	}
	args := n.Pipe.Cmds[0].Args
	if f, ok := args[0].(*parse.FieldNode); ok && len(args) == 1 {
		return "{{ ." + strings.Join(f.Ident, ".") + " }}"
	}
	name := args[0].String()
	strArg := func() (string, bool) {
		if len(args) != 2 {
			return "", false
		}
		s, ok := args[1].(*parse.StringNode)
		if !ok {
			return "", false
		}
		return s.Text, true
	}
	switch name {
	case "user":
		if v, ok := strArg(); ok {
			return "${var." + v + "}"
		}
	case "timestamp":
		if len(args) == 1 {
			return "${legacy_timestamp_unix()}"
		}
	case "isotime":
		if len(args) == 1 {
			return "${legacy_isotime()}"
		}
		if v, ok := strArg(); ok {
			return "${legacy_isotime(" + strconv.Quote(v) + ")}"
		}
	case "uuid":
		return "${uuidv4()}"
	case "build_name":
		return "${source.name}"
	case "build_type":
		return "${source.type}"
	case "template_dir", "pwd":
		return "${path.root}"
	case "env":
		return "${legacy_unmapped(" + strconv.Quote(n.String()+" (env is allowed only in variables)") + ")}"
	}
	return unmapped
}

func hclString(s string) string { return strconv.Quote(s) }

// jsonErr places a JSON syntax error at its line and column.
func jsonErr(src []byte, err error) string {
	if se, ok := err.(*json.SyntaxError); ok {
		line, col := 1, 1
		for _, ch := range src[:min(int(se.Offset), len(src))] {
			if ch == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
		}
		return fmt.Sprintf("%d:%d: %v", line, col, err)
	}
	return err.Error()
}

// wholeMatch reports whether re matches all of s.
func wholeMatch(re *regexp.Regexp, s string) bool {
	loc := re.FindStringIndex(s)
	return loc != nil && loc[0] == 0 && loc[1] == len(s)
}
