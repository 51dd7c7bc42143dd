// Package planfile is the plan imgbuild plan -out saves and imgbuild run
// PLAN runs, Terraform's habit: the builds and their order, and a
// fingerprint of everything they were planned from (the description's
// files, the var files, every variable's value, each build's inputs), so
// that a run can refuse a plan whose description or inputs changed since,
// and say what changed.
//
// A plan file holds no secret in clear: sensitive values appear only as
// keyed digests (engine.FingerprintKey), as they do in the state. Values
// known only when a run starts (timestamp(), run_id(), what an upstream
// build will make) are shown as deferred.
package planfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/engine"
)

// Format is the value of a plan file's "format" field, which tells a plan
// from any other JSON document.
const Format = "imgbuild-plan"

// Version is the layout of the plan files this imgbuild writes and reads.
// A plan of another version is refused: make it again.
const Version = 1

// Plan is a saved plan.
type Plan struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Imgbuild is the version of imgbuild that wrote the plan.
	Imgbuild string    `json:"imgbuild,omitempty"`
	Created  time.Time `json:"created"`
	// Description is the description the plan was made from, relative to
	// the plan file's directory, slash-separated.
	Description string `json:"description"`
	// Only and Except are the selection the plan was made with.
	Only       []string `json:"only,omitempty"`
	Except     []string `json:"except,omitempty"`
	StrictVars bool     `json:"strict_vars,omitempty"`
	// VarFiles are the --var-file files, relative to the plan file's
	// directory, with their digests, in the order given.
	VarFiles []Digest `json:"var_files,omitempty"`
	// Set are the --var values given, in the order given.
	Set []SetVar `json:"set,omitempty"`
	// Sources are the workspace files the evaluation read (relative to the
	// workspace root) with their digests.
	Sources []Digest `json:"sources"`
	// Modules maps each external module loaded to its content hash.
	Modules map[string]string `json:"modules,omitempty"`
	// Variables are every declared variable's value.
	Variables []Variable `json:"variables"`
	// KeyID names the fingerprint key the secrets' digests were made with.
	KeyID string `json:"key_id"`
	// Builds are the builds to run, in the order of their waves.
	Builds []Build `json:"builds"`
}

// Digest is a file and the SHA-256 of its content.
type Digest struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// SetVar is one --var given to plan. Value is there only for a variable
// that is declared and not sensitive; Hash, always, is the keyed digest of
// the value, which a run compares with what it is given.
type SetVar struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
	Hash  string `json:"hash"`
}

// Variable is a declared variable's value: in clear, or for a sensitive
// one "(sensitive)" and its keyed digest.
type Variable struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Sensitive bool   `json:"sensitive,omitempty"`
	Hash      string `json:"hash,omitempty"`
	Source    string `json:"source,omitempty"`
}

// Build is one planned build.
type Build struct {
	Name   string `json:"name"`
	Driver string `json:"driver"`
	Wave   int    `json:"wave"`
	// Needs are the builds it consumes, sorted.
	Needs []string `json:"needs"`
	// Fingerprint is the digest of Inputs.
	Fingerprint string         `json:"fingerprint"`
	Inputs      *engine.Inputs `json:"inputs"`
	// Deferred are the settings known only when the run starts: run
	// values and what upstream builds will make.
	Deferred []string `json:"deferred,omitempty"`
	// Plan is the build as plan --json shows it.
	Plan *engine.PlannedBuild `json:"plan,omitempty"`
}

// Write writes p as indented JSON.
func (p *Plan) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// BuildNames returns the builds' names in order.
func (p *Plan) BuildNames() []string {
	out := make([]string, len(p.Builds))
	for i, b := range p.Builds {
		out[i] = b.Name
	}
	return out
}

// Kind is what Sniff found a file to be.
type Kind int

// What a file may be.
const (
	NotJSON   Kind = iota // not a JSON object: a description
	IsPlan                // a JSON object with "format": "imgbuild-plan"
	OtherJSON             // a JSON object of something else
	BadJSON               // starts as JSON but does not parse
)

// Sniff tells a plan file from a description by its content: a plan is a
// JSON object whose "format" is Format. A Starlark description never
// starts with "{" followed by a quoted key, so anything that does is taken
// for JSON (strict: BadJSON when it does not parse); err says why for
// BadJSON.
func Sniff(data []byte) (Kind, error) {
	t := bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(t) == 0 || t[0] != '{' {
		return NotJSON, nil
	}
	rest := bytes.TrimLeft(t[1:], " \t\r\n")
	if len(rest) > 0 && rest[0] != '"' && rest[0] != '}' {
		return NotJSON, nil // {k: v} or {1: 2}: a Starlark dict expression
	}
	var head struct {
		Format *string `json:"format"`
	}
	if err := json.Unmarshal(t, &head); err != nil {
		return BadJSON, jsonError(t, err)
	}
	if head.Format == nil || *head.Format != Format {
		return OtherJSON, nil
	}
	return IsPlan, nil
}

// jsonError says where JSON fails to parse: line and column.
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		line, col := position(data, syn.Offset)
		return fmt.Errorf("invalid JSON at line %d, column %d: %v", line, col, err)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		line, col := position(data, typ.Offset)
		field := typ.Field
		if field == "" {
			field = "the document"
		}
		return fmt.Errorf("line %d, column %d: %s is a JSON %s where a plan has a %s", line, col, field, typ.Value, jsonType(typ.Type.Kind().String()))
	}
	return err
}

func jsonType(goKind string) string {
	switch goKind {
	case "struct", "map", "ptr":
		return "object"
	case "slice", "array":
		return "list"
	case "int", "int64", "uint", "uint64", "float64":
		return "number"
	}
	return goKind
}

func position(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// Read parses a plan file. It refuses JSON that is not a plan, a plan of
// another Version, and one that lacks what a run needs; each error says
// what is wrong (the caller adds the file's name and what to do).
func Read(data []byte) (*Plan, error) {
	kind, err := Sniff(data)
	switch kind {
	case NotJSON:
		return nil, errors.New("not a plan: a plan file is a JSON object written by imgbuild plan -out")
	case BadJSON:
		return nil, err
	case OtherJSON:
		return nil, fmt.Errorf("JSON, but not an imgbuild plan: it has no \"format\": %q", Format)
	}
	var head struct {
		Version  json.RawMessage `json:"version"`
		Imgbuild string          `json:"imgbuild"`
	}
	_ = json.Unmarshal(data, &head) // Sniff parsed it
	var v int
	if err := json.Unmarshal(head.Version, &v); err != nil || v != Version {
		by := ""
		if head.Imgbuild != "" {
			by = fmt.Sprintf(", written by imgbuild %s", head.Imgbuild)
		}
		return nil, fmt.Errorf("a plan of format version %s%s; this imgbuild reads version %d", strings.TrimSpace(string(head.Version)), by, Version)
	}
	var p Plan
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, jsonError(data, err)
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return &p, nil
}

// check refuses a plan that parses but lacks what a run needs.
func (p *Plan) check() error {
	if p.Description == "" {
		return errors.New(`it names no description ("description" is empty)`)
	}
	names := make([]string, len(p.Builds))
	for i, b := range p.Builds {
		if b.Fingerprint == "" || b.Inputs == nil {
			return fmt.Errorf("build %q has no fingerprint or inputs", b.Name)
		}
		names[i] = b.Name
	}
	seen, err := unique("build", "builds", names)
	if err != nil {
		return err
	}
	for _, b := range p.Builds {
		for _, n := range b.Needs {
			if !seen[n] {
				return fmt.Errorf("build %q needs %q, which the plan does not hold", b.Name, n)
			}
		}
	}
	for i, s := range p.Set {
		if s.Name == "" || s.Hash == "" {
			return fmt.Errorf("entry %d of \"set\" lacks its name or hash", i+1)
		}
	}
	names = make([]string, len(p.Variables))
	for i, v := range p.Variables {
		names[i] = v.Name
	}
	if _, err := unique("variable", "variables", names); err != nil {
		return err
	}
	for _, list := range []struct {
		name  string
		files []Digest
	}{{"sources", p.Sources}, {"var_files", p.VarFiles}} {
		paths := map[string]bool{}
		for i, f := range list.files {
			switch {
			case f.Path == "" || f.SHA256 == "":
				return fmt.Errorf("file %d of %q lacks its path or sha256", i+1, list.name)
			case paths[f.Path] && list.name == "sources": // a var file may be given twice
				return fmt.Errorf("%s is in %q twice", f.Path, list.name)
			}
			paths[f.Path] = true
		}
	}
	return nil
}

// unique refuses an empty or repeated name in a list of the plan, and
// returns the set of names.
func unique(what, list string, names []string) (map[string]bool, error) {
	seen := map[string]bool{}
	for i, n := range names {
		switch {
		case n == "":
			return nil, fmt.Errorf("%s %d of %q has no name", what, i+1, list)
		case seen[n]:
			return nil, fmt.Errorf("%s %q is in %q twice", what, n, list)
		}
		seen[n] = true
	}
	return seen, nil
}

// Changes lists what differs between the plan that was saved (p) and the
// one made now from the same description (now): description files,
// modules, variables, the fingerprint key, builds added or removed, and
// for each build the inputs that changed. None means the plan still holds.
func (p *Plan) Changes(now *Plan) []string {
	var out []string
	if p.Imgbuild != now.Imgbuild {
		out = append(out, fmt.Sprintf("it was made by imgbuild %s, and this is imgbuild %s: builders and the standard library may differ", p.Imgbuild, now.Imgbuild))
	}
	out = append(out, digestChanges("description file", p.Sources, now.Sources)...)
	out = append(out, digestChanges("var file", p.VarFiles, now.VarFiles)...)
	out = append(out, mapChanges("module", p.Modules, now.Modules)...)
	if p.KeyID != now.KeyID && p.KeyID != "" && now.KeyID != "" {
		out = append(out, fmt.Sprintf("the fingerprint key is another (the plan's is %s, this one %s): sensitive values cannot be compared; set %s as when planning", p.KeyID, now.KeyID, engine.FingerprintKeyEnv))
	}
	out = append(out, variableChanges(p.Variables, now.Variables)...)
	was, is := buildsByName(p.Builds), buildsByName(now.Builds)
	for _, b := range p.Builds {
		if _, ok := is[b.Name]; !ok {
			out = append(out, fmt.Sprintf("build %q was removed (or is no longer selected)", b.Name))
		}
	}
	for _, b := range now.Builds {
		old, ok := was[b.Name]
		if !ok {
			out = append(out, fmt.Sprintf("build %q was added", b.Name))
			continue
		}
		out = append(out, buildChanges(old, b)...)
	}
	return out
}

func buildsByName(bs []Build) map[string]Build {
	m := map[string]Build{}
	for _, b := range bs {
		m[b.Name] = b
	}
	return m
}

// digestChanges names the files changed, added or removed.
func digestChanges(what string, was, is []Digest) []string {
	a, b := map[string]string{}, map[string]string{}
	for _, d := range was {
		a[d.Path] = d.SHA256
	}
	for _, d := range is {
		b[d.Path] = d.SHA256
	}
	return pathChanges(what, a, b)
}

// pathChanges compares two maps of path to digest.
func pathChanges(what string, was, is map[string]string) []string {
	return changes(what, was, is, "is no longer read", "is read now and was not")
}

// mapChanges compares named values, saying which changed.
func mapChanges(what string, was, is map[string]string) []string {
	return changes(what, was, is, "is gone", "is new")
}

// changes names each key of was that is gone from is or changed, and
// each key new in is.
func changes(what string, was, is map[string]string, gone, added string) []string {
	var out []string
	for _, k := range sortedKeys(was) {
		switch now, ok := is[k]; {
		case !ok:
			out = append(out, fmt.Sprintf("%s %s %s", what, k, gone))
		case now != was[k]:
			out = append(out, fmt.Sprintf("%s %s changed", what, k))
		}
	}
	for _, k := range sortedKeys(is) {
		if _, ok := was[k]; !ok {
			out = append(out, fmt.Sprintf("%s %s %s", what, k, added))
		}
	}
	return out
}

func variableChanges(was, is []Variable) []string {
	var out []string
	now := map[string]Variable{}
	for _, v := range is {
		now[v.Name] = v
	}
	seen := map[string]bool{}
	for _, v := range was {
		seen[v.Name] = true
		n, ok := now[v.Name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("variable %q is no longer declared", v.Name))
		case v.Sensitive || n.Sensitive:
			if v.Hash != n.Hash || v.Sensitive != n.Sensitive {
				out = append(out, fmt.Sprintf("variable %q (sensitive) is not the plan's value: the plan holds only its digest, so give it as when planning (--var %s=... or %s%s)", v.Name, v.Name, "IMGBUILD_VAR_", v.Name))
			}
		case v.Value != n.Value:
			out = append(out, fmt.Sprintf("variable %q changed: %s when planned, %s now (from %s)", v.Name, v.Value, n.Value, n.Source))
		}
	}
	for _, v := range is {
		if !seen[v.Name] {
			out = append(out, fmt.Sprintf("variable %q is declared now and was not", v.Name))
		}
	}
	return out
}

// buildChanges names what changed in one build's inputs.
func buildChanges(was, is Build) []string {
	if was.Fingerprint == is.Fingerprint && was.Driver == is.Driver && strings.Join(was.Needs, ",") == strings.Join(is.Needs, ",") {
		return nil
	}
	prefix := fmt.Sprintf("build %q: ", was.Name)
	var out []string
	a, b := was.Inputs, is.Inputs
	if a.Driver != b.Driver {
		out = append(out, fmt.Sprintf("%sthe builder changed: %s when planned, %s now", prefix, a.Driver, b.Driver))
	}
	if strings.Join(was.Needs, ",") != strings.Join(is.Needs, ",") {
		out = append(out, fmt.Sprintf("%sthe builds it consumes changed: [%s] when planned, [%s] now", prefix, strings.Join(was.Needs, ", "), strings.Join(is.Needs, ", ")))
	}
	for _, c := range pathChanges("input file", a.Files, b.Files) {
		out = append(out, prefix+c)
	}
	for _, c := range mapChanges("setting", a.Settings, b.Settings) {
		out = append(out, prefix+c)
	}
	if stepsText(a.Steps) != stepsText(b.Steps) {
		out = append(out, prefix+"its provisioners, post-processors, error_cleanup or tests changed")
	}
	for _, c := range mapChanges("module", a.Modules, b.Modules) {
		out = append(out, prefix+c)
	}
	if len(out) == 0 {
		out = append(out, prefix+"its inputs changed")
	}
	return out
}

func stepsText(s []engine.StepInputs) string {
	data, _ := json.Marshal(s)
	return string(data)
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
