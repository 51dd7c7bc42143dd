package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/planfile"
	"github.com/imgbuild/imgbuild/starlark/description"
	"github.com/urfave/cli/v2"
)

// isPlanFile says whether file is a plan saved by plan -out, by its
// content whatever its name. JSON that is not a plan, or a plan that does
// not parse, is an error saying so.
func isPlanFile(file string) (bool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return false, fmt.Errorf("cannot read the description: %v", err)
	}
	kind, err := planfile.Sniff(data)
	if kind == planfile.NotJSON && strings.EqualFold(filepath.Ext(file), ".json") {
		// Named as JSON, and no JSON object: a list, or not JSON at all.
		kind, err = planfile.OtherJSON, nil
		var v any
		if jerr := json.Unmarshal(data, &v); jerr != nil {
			kind, err = planfile.BadJSON, fmt.Errorf("invalid JSON: %v", jerr)
		}
	}
	switch kind {
	case planfile.IsPlan:
		return true, nil
	case planfile.BadJSON:
		return false, fmt.Errorf("%s is neither a description nor a plan imgbuild can read: %v; save the plan again with imgbuild plan -out %s DESCRIPTION", file, err, file)
	case planfile.OtherJSON:
		return false, fmt.Errorf("%s is JSON but not an imgbuild plan (it has no \"format\": %q): give a description (.star), a directory holding %s, or a plan saved by imgbuild plan -out", file, planfile.Format, DefaultFile)
	}
	return false, nil
}

// savePlan writes the plan of d, made with in, to the file of plan -out
// (written whole or not at all).
func savePlan(c *cli.Context, d *description.Description, in inputs, planned *engine.Plan) error {
	out := c.String("out")
	p, err := planFor(c, d, in, filepath.Dir(out), planned)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".plan-*.json")
	if err != nil {
		return invalid(fmt.Errorf("--out %s: %v", out, err))
	}
	defer os.Remove(tmp.Name())
	if err := p.Write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the plan to %s: %w", out, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the plan to %s: %w", out, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return invalid(fmt.Errorf("--out %s: %v", out, err))
	}
	w := c.App.Writer
	if c.Bool("json") || c.Bool("dot") {
		w = c.App.ErrWriter // stdout holds the plan as asked
	}
	fmt.Fprintf(w, "\nSaved the plan to %s: imgbuild run %s runs exactly it, and refuses it if the description or its inputs change meanwhile.\n", out, out)
	return nil
}

// planFor makes the saved form of d's plan; paths it names are relative
// to planDir, where the plan file is. planned, if not nil, is the plan as
// plan shows it (with its marks).
func planFor(c *cli.Context, d *description.Description, in inputs, planDir string, planned *engine.Plan) (*planfile.Plan, error) {
	fp, err := newFingerprinter(d)
	if err != nil {
		return nil, err
	}
	key := fp.Key
	if planned == nil {
		planned = engine.MakePlan(d.Graph, registry(), d.Root)
	}
	p := &planfile.Plan{
		Format: planfile.Format, Version: planfile.Version, Imgbuild: version(), Created: time.Now().UTC().Truncate(time.Second),
		Only: in.only, Except: in.except, StrictVars: in.strictVars,
		Modules: d.ModuleHashes, KeyID: key.ID(), Sources: []planfile.Digest{}, Variables: []planfile.Variable{}, Builds: []planfile.Build{},
	}
	if p.Description, err = relSlash(planDir, filepath.Join(d.Root, d.File)); err != nil {
		return nil, err
	}
	for _, f := range in.varFiles {
		dg, err := digestFile(f)
		if err != nil {
			return nil, invalid(fmt.Errorf("--var-file %s: %v", f, err))
		}
		if dg.Path, err = relSlash(planDir, f); err != nil {
			return nil, err
		}
		p.VarFiles = append(p.VarFiles, dg)
	}
	sensitive := map[string]bool{}
	declared := map[string]bool{}
	for _, v := range d.Variables {
		declared[v.Name], sensitive[v.Name] = true, v.Sensitive
		pv := planfile.Variable{Name: v.Name, Value: v.Value, Sensitive: v.Sensitive, Source: v.Source}
		if v.Sensitive {
			pv.Value, pv.Hash = "(sensitive)", key.Hash(d.SecretValues[v.Name])
		}
		p.Variables = append(p.Variables, pv)
	}
	for _, kv := range in.vars {
		name, val, _ := strings.Cut(kv, "=")
		s := planfile.SetVar{Name: name, Hash: key.Hash(val)}
		if declared[name] && !sensitive[name] {
			s.Value = val
		}
		p.Set = append(p.Set, s)
	}
	for _, src := range d.Sources {
		dg, err := digestFile(src)
		if err != nil {
			return nil, err
		}
		dg.Path, _ = relSlash(d.Root, src)
		p.Sources = append(p.Sources, dg)
	}
	for _, pb := range planned.Builds {
		b, err := plannedBuild(c, d, fp, pb)
		if err != nil {
			return nil, err
		}
		p.Builds = append(p.Builds, b)
	}
	return p, nil
}

// plannedBuild is one build of a saved plan: its inputs with every
// upstream artifact still to be built, and what is known only at run.
func plannedBuild(c *cli.Context, d *description.Description, fp *engine.Fingerprinter, pb *engine.PlannedBuild) (planfile.Build, error) {
	n, _ := d.Graph.Node(pb.Name)
	upstream := map[string]string{}
	var deferred []string
	for _, e := range pb.Needs {
		upstream[e.From] = "(to be built)"
		if kw, _, ok := strings.Cut(e.Via, " ← "); ok {
			deferred = append(deferred, kw)
		}
	}
	for _, s := range pb.Settings {
		if strings.Contains(s.Value, "(at run: ") {
			deferred = append(deferred, s.Keyword)
		}
	}
	sort.Strings(deferred)
	in, err := fp.Inputs(c.Context, n, upstream, false)
	if err != nil {
		return planfile.Build{}, invalid(err)
	}
	needs := make([]string, 0, len(upstream))
	for b := range upstream {
		needs = append(needs, b)
	}
	sort.Strings(needs)
	return planfile.Build{
		Name: n.Name, Driver: n.Driver, Wave: pb.Wave, Needs: needs,
		Fingerprint: in.Fingerprint(), Inputs: in, Deferred: slices.Compact(deferred), Plan: pb,
	}, nil
}

// loadRunArg evaluates what run's argument names: a description, or the
// one a saved plan names, checked against the plan (nil for a
// description).
func loadRunArg(c *cli.Context) (*description.Description, *planfile.Plan, error) {
	file, err := descriptionArg(c)
	if err != nil {
		return nil, nil, err
	}
	plan, err := isPlanFile(file)
	switch {
	case err != nil:
		return nil, nil, invalid(err)
	case plan:
		return loadPlan(c, file)
	}
	d, err := evaluate(c, file, inputsOf(c))
	return d, nil, err
}

// loadPlan evaluates the description a saved plan names, with the inputs
// it was made with, and refuses the plan when anything it was made from
// changed since, naming what; and when run's flags would change it.
func loadPlan(c *cli.Context, file string) (*description.Description, *planfile.Plan, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, invalid(fmt.Errorf("reading the plan: %v", err))
	}
	p, err := planfile.Read(data)
	if err != nil {
		return nil, nil, invalid(fmt.Errorf("%s: %v: make the plan again with imgbuild plan -out %s DESCRIPTION", file, err, file))
	}
	planDir := filepath.Dir(file)
	desc := filepath.Join(planDir, filepath.FromSlash(p.Description))
	again := fmt.Sprintf("make the plan again with imgbuild plan -out %s %s", file, desc)
	in := inputs{only: p.Only, except: p.Except, strictVars: p.StrictVars}
	for _, f := range p.VarFiles {
		in.varFiles = append(in.varFiles, filepath.Join(planDir, filepath.FromSlash(f.Path)))
	}
	if err := sameFlags(c, p, in, again); err != nil {
		return nil, nil, err
	}
	key, err := fingerprintKey()
	if err != nil {
		return nil, nil, err
	}
	given := map[string]string{}
	for _, kv := range c.StringSlice("var") {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, nil, invalid(fmt.Errorf("--var %q: write it as --var name=value", kv))
		}
		given[name] = val
	}
	planned := map[string]bool{}
	for _, s := range p.Set {
		planned[s.Name] = true
		val, ok := given[s.Name]
		switch {
		case ok && key.Hash(val) != s.Hash:
			return nil, nil, invalid(fmt.Errorf("--var %s: not the value the plan in %s was made with: a plan runs with its own values, so drop --var %s (or %s with the new value)", s.Name, file, s.Name, again))
		case ok:
			in.vars = append(in.vars, s.Name+"="+val)
		case s.Value != "" || key.Hash("") == s.Hash: // in clear, or empty
			in.vars = append(in.vars, s.Name+"="+s.Value)
		}
		// A sensitive value the plan holds only as a digest comes from
		// $IMGBUILD_VAR_<name> when run is not given it again; the
		// comparison below names it when neither matches.
	}
	for name := range given {
		if !planned[name] {
			return nil, nil, invalid(fmt.Errorf("--var %s: the plan in %s was made without it, and a plan runs with the values it was made with: drop --var %s, or %s --var %s=...", name, file, name, again, name))
		}
	}
	if _, err := os.Stat(desc); err != nil {
		return nil, nil, invalid(fmt.Errorf("the plan in %s is of the description %s, which cannot be read: %v", file, desc, err))
	}
	d, err := evaluate(c, desc, in)
	if err != nil {
		return nil, nil, err
	}
	now, err := planFor(c, d, in, planDir, nil)
	if err != nil {
		return nil, nil, err
	}
	changes := p.Changes(now)
	if len(changes) > 0 {
		return nil, nil, invalid(fmt.Errorf("the plan in %s (made %s) no longer holds; since it was made:\n  %s\nto build what the description says now, %s, look at what it shows, and run that plan", file, p.Created.Format(time.RFC3339), strings.Join(changes, "\n  "), again))
	}
	return d, p, nil
}

// samePlanMarks refuses a saved plan when the builds' records say
// otherwise than when it was made: a build planned up to date that would
// be rebuilt now (its artifact is gone, say), or one planned to be built
// that another run has built since. Builds that cannot be assessed are
// left to the run, which reports them.
func samePlanMarks(c *cli.Context, d *description.Description, p *planfile.Plan, store engine.Store, fp *engine.Fingerprinter) error {
	records, err := store.Load(c.Context)
	if err != nil {
		return &exitError{code: exitBuildFailed, err: fmt.Errorf("run: reading the state in %s: %w", store.Where(), err)}
	}
	marks := (&engine.Assessor{Graph: d.Graph, Fingerprinter: fp, Records: records}).Assess(c.Context)
	var changes []string
	for _, b := range p.Builds {
		m := marks[b.Name]
		if b.Plan == nil || b.Plan.Mark == "" || m == nil || m.Err != nil {
			continue
		}
		was, now := b.Plan.Mark == engine.MarkUpToDate, m.Mark == engine.MarkUpToDate
		switch {
		case was && !now:
			changes = append(changes, fmt.Sprintf("build %q was up to date when planned and would be rebuilt now: %s", b.Name, strings.Join(m.Reasons, "; ")))
		case !was && now:
			changes = append(changes, fmt.Sprintf("build %q was to be built (%s) and is up to date now: a run built it since", b.Name, b.Plan.Mark))
		}
	}
	if len(changes) == 0 {
		return nil
	}
	file := c.Args().First()
	return invalid(fmt.Errorf("the plan in %s (made %s) no longer holds; the builds' records (the state) changed since:\n  %s\nto see what a run does now, make the plan again with imgbuild plan -out %s %s", file, p.Created.Format(time.RFC3339), strings.Join(changes, "\n  "), file, filepath.Join(filepath.Dir(file), filepath.FromSlash(p.Description))))
}

// sameFlags refuses --only, --except, --var-file and --strict-vars given
// to run with a plan unless they are what the plan was made with.
func sameFlags(c *cli.Context, p *planfile.Plan, in inputs, again string) error {
	differ := func(flag, planned string) error {
		made := fmt.Sprintf("it was made with --%s %s", flag, planned)
		if planned == "" {
			made = fmt.Sprintf("it was made without --%s", flag)
		}
		return invalid(fmt.Errorf("--%s given to run with a plan that differs from the plan's: a plan runs what it was made with, and %s; drop --%s, or %s --%s ...", flag, made, flag, again, flag))
	}
	if c.IsSet("only") && !slices.Equal(splitList(c.StringSlice("only")), p.Only) {
		return differ("only", strings.Join(p.Only, ","))
	}
	if c.IsSet("except") && !slices.Equal(splitList(c.StringSlice("except")), p.Except) {
		return differ("except", strings.Join(p.Except, ","))
	}
	if c.IsSet("var-file") {
		var got []string
		for _, f := range c.StringSlice("var-file") {
			got = append(got, absPath(f))
		}
		var want []string
		for _, f := range in.varFiles {
			want = append(want, absPath(f))
		}
		if !slices.Equal(got, want) {
			return differ("var-file", strings.Join(in.varFiles, ", "))
		}
	}
	if c.IsSet("strict-vars") && c.Bool("strict-vars") != p.StrictVars {
		return differ("strict-vars", fmt.Sprint(p.StrictVars))
	}
	return nil
}

func absPath(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// relSlash is p relative to dir, slash-separated.
func relSlash(dir, p string) (string, error) {
	r, err := filepath.Rel(absPath(dir), absPath(p))
	if err != nil {
		return "", fmt.Errorf("naming %s relative to %s: %w", p, dir, err)
	}
	return filepath.ToSlash(r), nil
}

// digestFile is the SHA-256 of a file's content.
func digestFile(path string) (planfile.Digest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return planfile.Digest{}, err
	}
	sum := sha256.Sum256(data)
	return planfile.Digest{Path: path, SHA256: hex.EncodeToString(sum[:])}, nil
}

// planDocNames are the names imgbuild docs shows planDocs for.
var planDocNames = []string{"plan-file", "plan-out", "saved-plan"}

// planDocs is imgbuild docs plan-file: saving a plan and running it, and
// what the file holds.
const planDocs = `Saved plans: imgbuild plan FILE -out PLAN, then imgbuild run PLAN

  plan -out PLAN shows the plan and saves it. run PLAN (a plan is told by
  its content, whatever its name) runs exactly its builds, in its order,
  with the variables, --var-file files and --only/--except it was made
  with. It refuses the plan (exit 2, nothing built), listing each change
  and saying to make the plan again, when since the plan was made:
    - a workspace file the evaluation read changed (the description, what
      it loads, imgbuild.mod, imgbuild.lock), or an external module did;
    - a --var-file changed, or a variable's value did (also one from
      IMGBUILD_VAR_<name> or var(env = ...));
    - a build was added or removed;
    - a build's inputs changed: its settings, steps, the content of a file
      it reads (a provisioner's script), its builder's version;
    - the builds' records did: a build planned up to date would be rebuilt
      now, or one planned to be built was built since (a plan runs once);
    - the plan was made by another version of imgbuild.

  A sensitive value is never in the plan in clear, only as "(sensitive)" and
  a keyed digest (the fingerprint key, IMGBUILD_FINGERPRINT_KEY or this
  user's key file): give it to run again, --var name=... or
  IMGBUILD_VAR_<name>; a value that is not the plan's is refused. Other
  --var, --var-file, --only, --except and --strict-vars given to run with a
  plan must be the plan's own.

The file (JSON):
  format, version      "imgbuild-plan", 1: another version is refused
  imgbuild, created    the imgbuild that wrote it, and when
  description          the description, relative to the plan file
  only, except, strict_vars, var_files (path, sha256), set (--var: name,
                       value when not sensitive, hash)
  sources              the workspace files evaluated (path, sha256)
  modules              each external module's content hash
  variables            name, value ("(sensitive)" and hash for a secret),
                       source
  key_id               names the fingerprint key, not the key
  builds               name, driver, wave, needs, fingerprint, inputs (what
                       the fingerprint counts), deferred (settings known
                       only at run: timestamp(), run_id(), upstream
                       outputs), plan (as plan --json shows the build)
`
