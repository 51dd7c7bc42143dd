package builtins

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// varDoc documents var(), the one builtin not made from a driver schema.
const varDoc = `var(name, default = ?, type = None, description = "", sensitive = False, validation = None, env = None)
  Declares a variable and returns its value: from --var name=value, a
  --var-file, the environment variable IMGBUILD_VAR_<name>, the environment
  variable env names (when set and not empty), or the default, in that
  order. Without a default the variable is required.

  Values from outside are converted to the variable's type as Packer
  converts them: "false" is False for a bool, "2" is 2 for a number, 2 is
  "2" for a string; lists and dicts on the command line are written as
  JSON. A value that cannot be converted is an error naming the file and
  line that set it. Var-files are Packer's .pkrvars.hcl (name = value),
  JSON objects (.json, .pkrvars.json) or .star files of plain assignments;
  a var-file's variable the description does not declare is a warning
  (--strict-vars makes it an error).

  name (string, required)         The variable's name; the only positional argument.
  default (any)                   The value when none is given.
  type (string)                   string, int, float, number (int or float), bool, list, dict or any;
                                  list(T) and dict(T) convert their elements. Unset: the default's type.
  description (string)            Shown by imgbuild plan.
  sensitive (bool, default False) Never shown: the plan, output, logs, state, manifests, summary and errors show (sensitive).
  validation (callable)           Called with the value (sensitive, if the variable is); return True, or False or an error message.
  env (string)                    An environment variable the value may come from ("AWS_REGION"),
                                  like Packer's default = env("AWS_REGION"); the plan shows it.

  A sensitive variable is a string (a non-string default is an error), and
  every string made from it stays sensitive and reaches the machine with its
  real value:
    + and *      "Bearer " + tok, tok * 2
    %            "Bearer %s" % tok
    format()     "{}".format(tok)
    join()       " ".join(["Bearer", tok])
    str, repr    str(tok), repr(tok)
    json         json.encode({"t": tok})
    slices       tok[4:]
    methods      tok.strip(), tok.split(":"), ...
  len(tok), tok.startswith("ghp_") and "x" in tok work as for strings;
  tok == "plain string" is always False. Formatting a sensitive value and
  then changing the text as a plain string (f = "{}".format; f(tok).upper())
  is an error, never a wrong value.
`

// runDoc documents the run values.
const runDoc = `timestamp(), run_id(), formatdate(layout, time)
  Values known only when the run starts, the same for every build of the
  run: timestamp() is the run's start time, run_id() the run's id (its logs
  are under .imgbuild/logs/<run_id>). Evaluation stays deterministic: the
  plan shows them as (at run: timestamp), and the fingerprints that decide
  whether a build is up to date ignore them.

  They join strings with +: ami_name = "base-" + timestamp(). Formatted into
  a string ("%s" % timestamp(), str()) they read back as the same value.

  timestamp()                     RFC 3339 in UTC: "2026-01-02T15:04:05Z" (Packer's timestamp()).
  timestamp().format(layout)      The time in a formatdate layout: "YYYYMMDD-hhmmss" → "20260102-150405".
  timestamp().unix()              Seconds since 1970, as Packer's legacy {{timestamp}}.
  formatdate(layout, time)        Packer's formatdate: time is timestamp(), or an RFC 3339 string
                                  (formatted at once).
  run_id()                        The run's id: "20260102-150405.000".

  Layouts are Packer's and Terraform's formatdate: YYYY and YY (year), MM, M, MMM, MMMM
  (month), DD, D (day), EEE, EEEE (weekday), hh, h (hour, 24h), HH, H (12h), AA, aa
  (AM/PM), mm, m, ss, s, ZZZ (UTC), Z, ZZZZ, ZZZZZ (offset); 'quoted' text is literal.
`

// fileDoc documents read_file and template_file.
const fileDoc = `read_file(path), template_file(path, vars = {})
  The text of a file inside the workspace: "//path" from the workspace root,
  else relative to the calling file. A file outside the workspace is an
  error. Given to a keyword, the file is an input of that build: the plan
  shows read_file("//path") with the text's digest, and the build's
  fingerprint changes when the file does. The text is a string to the
  description (+, %, len and the string methods).

  template_file renders the file with HCL's template syntax, the one
  Packer's templatefile() uses, so Packer templates (.pkrtpl.hcl) work as
  they are:
    ${name}  ${name.key}  ${name[0]}       a value from vars
    %{ if cond }...%{ else }...%{ endif }  a condition
    %{ for x in list }...%{ endfor }       a loop (%{ for k, v in dict })
    ${upper(name)}                         a function
    $${  %%{                               a literal ${ or %{
  Functions: FUNCTIONS.
  A template given a sensitive value renders to a sensitive string;
  outputs of other builds and run values go in as themselves.
`

// Docs returns the reference of one builtin, from its schema.
func Docs(reg *engine.Registry, name string) (string, error) {
	switch name {
	case "var":
		return varDoc, nil
	case "timestamp", "run_id", "formatdate":
		return runDoc, nil
	case "read_file", "template_file":
		return strings.Replace(fileDoc, "FUNCTIONS", wrap(strings.Join(TemplateFunctions(), ", "), 62, "\n             "), 1), nil
	}
	if def, ok := reg.Builders[name]; ok {
		var b strings.Builder
		b.WriteString(def.Schema.Docs())
		b.WriteString("\n  Every builder also takes:\n")
		fmt.Fprintf(&b, "  %-34s %s\n", "name (string, required)", "The build's unique name; other builds refer to it.")
		fmt.Fprintf(&b, "  %-34s %s\n", "provisioners (list)", "Provisioners run in order on the machine: shell(...), file(...).")
		fmt.Fprintf(&b, "  %-34s %s\n", "error_cleanup (list)", "Provisioners run on the machine when a provisioner fails, before the build is cleaned up.")
		fmt.Fprintf(&b, "  %-34s %s\n", "tests (list)", "Checks run on a fresh machine launched from the new image before it is published: shell(...), file(...), testinfra(...), goss(...), ansible(...); each takes name = \"...\" (shown in the plan and results) and timeout (default "+engine.DefaultTestTimeout.String()+"). A failed test removes the image.")
		fmt.Fprintf(&b, "  %-34s %s\n", "post (list)", "Post-processors run on the artifact: manifest(...), checksum(...).")
		fmt.Fprintf(&b, "  %-34s %s\n", "depends_on (list)", "Builds (handles or names) that must succeed first.")
		b.WriteString("\n  Outputs (use as " + name + "_build.<output> in other builds):\n")
		for _, o := range def.AllOutputs() {
			fmt.Fprintf(&b, "  %-34s %s\n", o.Name, o.Doc)
		}
		return b.String(), nil
	}
	if def, ok := reg.PostProcessors[name]; ok && len(def.Outputs) > 0 {
		var b strings.Builder
		b.WriteString(def.Schema.Docs())
		b.WriteString("\n  Outputs the build gains (use as build.<output> in other builds):\n")
		for _, o := range def.Outputs {
			fmt.Fprintf(&b, "  %-34s %s\n", o.Name, o.Doc)
		}
		return b.String(), nil
	}
	if _, ok := reg.Provisioners[name]; ok {
		s, _ := reg.Schema(name)
		return s.Docs() + fmt.Sprintf("\n  Every provisioner also takes:\n  %-34s %s\n", "name (string)", "What it is called on the board and, as one of tests = [...], in the plan and the results (default: its kind and what it works on)."), nil
	}
	if s, ok := reg.Schema(name); ok {
		return s.Docs(), nil
	}
	all := append(reg.Names(), OtherBuiltins...)
	msg := fmt.Sprintf("no builtin named %q", name)
	if near := schema.Nearest(name, all); near != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", near)
	}
	return "", fmt.Errorf("%s; run imgbuild docs to list them", msg)
}

// Index lists every builtin by kind, with the first sentence of its doc.
func Index(reg *engine.Registry) string {
	var b strings.Builder
	section := func(title string, names []string, doc func(string) string) {
		sort.Strings(names)
		fmt.Fprintf(&b, "%s:\n", title)
		for _, n := range names {
			fmt.Fprintf(&b, "  %-20s %s\n", n, firstSentence(doc(n)))
		}
		b.WriteString("\n")
	}
	schemaDoc := func(n string) string { s, _ := reg.Schema(n); return s.Doc }
	section("Builders", slices.Collect(maps.Keys(reg.Builders)), schemaDoc)
	section("Provisioners", slices.Collect(maps.Keys(reg.Provisioners)), schemaDoc)
	section("Post-processors", slices.Collect(maps.Keys(reg.PostProcessors)), schemaDoc)
	if len(reg.Lookups) > 0 {
		section("Lookups", slices.Collect(maps.Keys(reg.Lookups)), schemaDoc)
	}
	section("Other", slices.Clone(OtherBuiltins), func(n string) string { return otherDocs[n] })
	b.WriteString("Run imgbuild docs NAME for a builtin's keywords.\n")
	return b.String()
}

// OtherBuiltins are the builtins not made from a driver's schema.
var OtherBuiltins = []string{"var", "timestamp", "run_id", "formatdate", "read_file", "template_file"}

var otherDocs = map[string]string{
	"var":           "Declares a variable and returns its value.",
	"timestamp":     "The run's start time, known when the run starts (the plan shows (at run: timestamp)).",
	"run_id":        "The run's id, known when the run starts.",
	"formatdate":    "Formats timestamp() (when the run starts) or an RFC 3339 time with a formatdate layout.",
	"read_file":     "The text of a file inside the workspace, an input of the build that uses it.",
	"template_file": "A workspace file rendered with HCL template syntax (Packer's templatefile), an input of the build that uses it.",
}

// wrap breaks s at spaces into lines of at most width, joined by sep.
func wrap(s string, width int, sep string) string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return strings.Join(append(lines, line), sep)
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}
