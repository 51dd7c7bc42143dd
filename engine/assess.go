package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
)

// Mark is what a run would do with a build.
type Mark string

// Marks, as the plan shows them (+, =, ~).
const (
	MarkNew      Mark = "new"
	MarkUpToDate Mark = "up to date"
	MarkRebuild  Mark = "rebuild"
)

// Symbol is the mark's sign in the plan.
func (m Mark) Symbol() string {
	switch m {
	case MarkUpToDate:
		return "="
	case MarkRebuild:
		return "~"
	}
	return "+"
}

// Assessment says what a run would do with one build, and why.
type Assessment struct {
	Mark Mark
	// Reasons name what changed, the way terraform plan does:
	// `instance_type: "t3.small" → "t3.large"`, `file scripts/x.sh
	// changed`, `upstream base was rebuilt`, `artifact is gone: ...`.
	Reasons []string
	// Prev is the build's record in state, nil when it has none.
	Prev *BuildState
	// Inputs are what the build depends on now (with the identity of
	// upstream artifacts as state records them).
	Inputs *Inputs
	// Err is why the build could not be assessed (a lookup that failed,
	// an input that could not be read): it cannot run either.
	Err error
}

// why says, for the build's log, why it is built.
func (a *Assessment) why() string {
	switch a.Mark {
	case MarkNew:
		return "new build: no earlier build in state"
	case MarkRebuild:
		return "rebuilding: " + strings.Join(a.Reasons, "; ")
	}
	return ""
}

// Assessor decides which builds of a graph are up to date.
type Assessor struct {
	Graph         *Graph
	Fingerprinter *Fingerprinter
	// Records are the builds' records in state.
	Records map[string]*BuildState
	// Force, if set, says why a build is rebuilt whatever its state
	// ("forced (--force)"), or "" when it is not.
	Force func(build string) string
	// NoVerify leaves artifacts unchecked and lookups unresolved (plan
	// --refresh=false): an unchanged build without lookups is then shown
	// up to date without asking its driver.
	NoVerify bool
	// AllLookups resolves the lookups of every build, not only of those
	// with a record to compare with (run, plan --refresh).
	AllLookups bool
}

// Assess marks every build of the graph: new, up to date (nothing changed,
// and its driver confirmed the artifact is there), or to rebuild, with the
// reasons. Artifacts are verified in one batch per driver. A build that
// cannot be assessed (a lookup that failed, a file that could not be read)
// has its Err set.
func (a *Assessor) Assess(ctx context.Context) map[string]*Assessment {
	out := map[string]*Assessment{}
	var candidates []string
	for _, wave := range a.Graph.Waves() {
		for _, n := range wave {
			up := map[string]string{}
			for _, d := range a.Graph.Deps(n) {
				if da := out[d]; da != nil && da.Mark == MarkUpToDate {
					up[d] = a.Records[d].Identity()
				} else {
					up[d] = pendingIdentity
				}
			}
			as, err := a.Compare(ctx, n, up)
			if err != nil {
				as = &Assessment{Mark: MarkRebuild, Prev: a.Records[n.Name], Err: err, Reasons: []string{err.Error()}}
			}
			out[n.Name] = as
			if as.Mark == MarkUpToDate {
				candidates = append(candidates, n.Name)
			}
		}
	}
	if !a.NoVerify {
		for name, err := range a.Verify(ctx, candidates) {
			if err != nil {
				out[name].Mark = MarkRebuild
				out[name].Reasons = []string{err.Error()}
			}
		}
		// A build whose upstream turned out gone waits for its rebuild.
		for _, wave := range a.Graph.Waves() {
			for _, n := range wave {
				as := out[n.Name]
				if as.Mark == MarkNew || as.Err != nil {
					continue
				}
				for _, d := range a.Graph.Deps(n) {
					why := fmt.Sprintf("upstream %s will be rebuilt", d)
					if out[d].Mark != MarkUpToDate && !slices.Contains(as.Reasons, why) {
						as.Mark = MarkRebuild
						as.Reasons = append(as.Reasons, why)
					}
				}
			}
		}
	}
	return out
}

// Compare assesses one build without verifying its artifact: upstream maps
// each build it consumes to its artifact's identity (pendingIdentity for
// one still to be built).
func (a *Assessor) Compare(ctx context.Context, n *Node, upstream map[string]string) (*Assessment, error) {
	prev := a.Records[n.Name]
	lookups := !a.NoVerify && (a.AllLookups || prev.Built())
	in, err := a.Fingerprinter.Inputs(ctx, n, upstream, lookups)
	if err != nil {
		return nil, err
	}
	as := &Assessment{Prev: prev, Inputs: in, Mark: MarkUpToDate}
	switch {
	case !prev.Built():
		as.Mark = MarkNew
	case a.Force != nil && a.Force(n.Name) != "":
		as.Mark, as.Reasons = MarkRebuild, []string{a.Force(n.Name)}
	default:
		if why := Why(prev, in); len(why) > 0 {
			as.Mark, as.Reasons = MarkRebuild, why
		}
	}
	return as, nil
}

// Verify checks the recorded artifacts of the named builds: their local
// files against their sha256 (one stat each when unchanged), then, per
// driver in one call, what the driver can check (an AMI in every region).
// A build that has neither is not verifiable: it always runs. The map
// holds an error for each build whose artifact is not there, intact.
func (a *Assessor) Verify(ctx context.Context, builds []string) map[string]error {
	out := map[string]error{}
	reg := a.Fingerprinter.Registry
	byDriver := map[string][]ArtifactCheck{}
	var drivers []string
	for _, name := range builds {
		n, _ := a.Graph.Node(name)
		rec := a.Records[name]
		def := reg.Builders[n.Driver]
		if err := a.verifyFiles(rec); err != nil {
			out[name] = err
			continue
		}
		if def == nil || def.Verify == nil {
			if len(rec.Files) == 0 {
				out[name] = fmt.Errorf("%s() builds have no artifact imgbuild can check, so they always run", n.Driver)
			}
			continue
		}
		cfg, err := a.recordedConfig(n, def)
		if err != nil {
			out[name] = fmt.Errorf("its artifact cannot be checked: %w", err)
			continue
		}
		if _, ok := byDriver[n.Driver]; !ok {
			drivers = append(drivers, n.Driver)
		}
		byDriver[n.Driver] = append(byDriver[n.Driver], ArtifactCheck{Build: name, Config: cfg, Artifact: rec.Artifact})
	}
	for _, d := range drivers {
		checks := byDriver[d]
		errs := reg.Builders[d].Verify(ctx, checks)
		for i, c := range checks {
			var err error
			if i < len(errs) {
				err = errs[i]
			} else {
				err = errors.New("its driver did not say")
			}
			if err != nil {
				out[c.Build] = fmt.Errorf("artifact is gone: %w", err)
			}
		}
	}
	return out
}

// verifyFiles checks the artifact's local files against their sums.
func (a *Assessor) verifyFiles(rec *BuildState) error {
	for _, f := range rec.Artifact.Files {
		prev, ok := rec.Files[f]
		if !ok {
			continue
		}
		p := f
		if !filepath.IsAbs(p) {
			p = filepath.Join(a.Fingerprinter.Workspace, p)
		}
		got, err := SumFile(p, &prev)
		if err != nil {
			return fmt.Errorf("artifact is gone: %s is missing", f)
		}
		if got.SHA256 != prev.SHA256 {
			return fmt.Errorf("artifact changed: %s no longer matches its sha256", f)
		}
	}
	return nil
}

// recordedConfig decodes a build's settings with references resolved from
// the artifacts state records for its upstream builds.
func (a *Assessor) recordedConfig(n *Node, def *BuilderDef) (any, error) {
	settings, err := value.Resolve(n.Settings, func(r value.Ref) (value.Value, error) {
		rec := a.Records[r.Build]
		if !rec.Built() {
			return nil, fmt.Errorf("upstream %s has no artifact in state", r.Build)
		}
		return rec.Artifact.Output(r.Output)
	})
	if err != nil {
		return nil, err
	}
	settings, err = value.ResolveRun(settings, value.RunInfo{})
	if err != nil {
		return nil, err
	}
	cfg := def.Schema.New()
	if _, err := def.Schema.Decode(settings.(*value.Map), cfg, schema.Options{}); err != nil {
		return nil, err
	}
	return cfg, nil
}

// secretDigest is how a keyed digest of a secret shows in inputs.
var secretDigest = regexp.MustCompile(`\(sensitive hmac:[0-9a-f]+\)`)

// shownInput is an input's text as a reason shows it: secrets as
// (sensitive), long values cut.
func shownInput(s string) string {
	return cutInput([]rune(secretDigest.ReplaceAllString(s, "(sensitive)")))
}

func cutInput(r []rune) string {
	if len(r) > 80 {
		return string(r[:79]) + "…"
	}
	return string(r)
}

// shownChange is a changed input's old and new text as a reason shows
// them, secrets as (sensitive): long values are cut around where they
// first differ, so that a change past the first 80 characters shows, and
// is not taken for a secret's. ok is false when only a secret changed.
func shownChange(old, cur string) (o, n string, ok bool) {
	ro := []rune(secretDigest.ReplaceAllString(old, "(sensitive)"))
	rn := []rune(secretDigest.ReplaceAllString(cur, "(sensitive)"))
	if string(ro) == string(rn) {
		return "", "", false
	}
	if o, n := cutInput(ro), cutInput(rn); o != n {
		return o, n, true
	}
	same := 0
	for same < len(ro) && same < len(rn) && ro[same] == rn[same] {
		same++
	}
	from := max(same-20, 0)
	return "…" + cutInput(ro[from:]), "…" + cutInput(rn[from:]), true
}

// Why lists what differs between the inputs a build was last built from
// and in, the way terraform plan names changes; nil when nothing does.
func Why(prev *BuildState, in *Inputs) []string {
	if prev.Fingerprint == in.Fingerprint() {
		return nil
	}
	old := prev.Inputs
	if old == nil {
		return []string{"its inputs were not recorded (built by an earlier imgbuild)"}
	}
	var why []string
	if old.Driver != in.Driver {
		why = append(why, fmt.Sprintf("driver %s → %s", old.Driver, in.Driver))
	}
	why = append(why, diffFields("", old.Settings, in.Settings)...)
	why = append(why, diffSteps(old.Steps, in.Steps)...)
	for _, f := range unionKeys(old.Files, in.Files) {
		o, ok1 := old.Files[f]
		n, ok2 := in.Files[f]
		switch {
		case !ok1:
			why = append(why, fmt.Sprintf("now reads %s", fileName(f)))
		case !ok2:
			why = append(why, fmt.Sprintf("no longer reads %s", fileName(f)))
		case o != n:
			why = append(why, fmt.Sprintf("%s changed", fileName(f)))
		}
	}
	for _, b := range unionKeys(old.Upstream, in.Upstream) {
		o, ok1 := old.Upstream[b]
		n, ok2 := in.Upstream[b]
		switch {
		case !ok1:
			why = append(why, fmt.Sprintf("now needs %s", b))
		case !ok2:
			why = append(why, fmt.Sprintf("no longer needs %s", b))
		case n == pendingIdentity:
			why = append(why, fmt.Sprintf("upstream %s will be rebuilt", b))
		case o != n:
			why = append(why, fmt.Sprintf("upstream %s was rebuilt", b))
		}
	}
	for _, m := range unionKeys(old.Modules, in.Modules) {
		o, ok1 := old.Modules[m]
		n, ok2 := in.Modules[m]
		switch {
		case !ok1:
			why = append(why, fmt.Sprintf("now loads module %s", m))
		case !ok2:
			why = append(why, fmt.Sprintf("no longer loads module %s", m))
		case o != n:
			why = append(why, fmt.Sprintf("module %s changed", m))
		}
	}
	for _, k := range unionKeys(old.Lookups, in.Lookups) {
		o, ok1 := old.Lookups[k]
		n, ok2 := in.Lookups[k]
		kind := lookupKind(in.Settings[k])
		switch {
		case !ok2:
			why = append(why, fmt.Sprintf("%s: %s was not resolved (plan --refresh=false)", k, kind))
		case !ok1 || o != n:
			why = append(why, fmt.Sprintf("%s: %s now resolves to %s (was %s)", k, kind, n, orNone(o)))
		}
	}
	if len(why) == 0 && old.KeyID != in.KeyID && old.KeyID != "" && in.KeyID != "" {
		why = append(why, fmt.Sprintf("its secrets were hashed with another fingerprint key: set %s to the same value on every runner that shares state", FingerprintKeyEnv))
	}
	if len(why) == 0 {
		why = append(why, "its inputs changed")
	}
	return why
}

func fileName(f string) string {
	if strings.Contains(f, "(") {
		return f // read_file("//x")
	}
	return "file " + f
}

func lookupKind(setting string) string {
	if i := strings.IndexByte(setting, '('); i > 0 {
		return setting[:i]
	}
	return "the lookup"
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// diffFields names the keywords that were set, unset or changed.
func diffFields(prefix string, old, cur map[string]string) []string {
	var why []string
	for _, k := range unionKeys(old, cur) {
		o, ok1 := old[k]
		n, ok2 := cur[k]
		switch {
		case !ok1:
			why = append(why, fmt.Sprintf("%s%s = %s (was unset)", prefix, k, shownInput(n)))
		case !ok2:
			why = append(why, fmt.Sprintf("%s%s unset (was %s)", prefix, k, shownInput(o)))
		case o != n:
			if so, sn, ok := shownChange(o, n); ok {
				why = append(why, fmt.Sprintf("%s%s: %s → %s", prefix, k, so, sn))
			} else {
				why = append(why, fmt.Sprintf("%s%s: a secret changed", prefix, k))
			}
		}
	}
	return why
}

// diffSteps names the steps added, removed or changed, list by list.
func diffSteps(old, cur []StepInputs) []string {
	var why []string
	for _, list := range []string{"provisioners", "error_cleanup", "tests", "post"} {
		o, n := stepsOf(old, list), stepsOf(cur, list)
		for i := 0; i < max(len(o), len(n)); i++ {
			at := fmt.Sprintf("%s[%d]", list, i)
			switch {
			case i >= len(o):
				why = append(why, fmt.Sprintf("%s %s added", at, n[i].Kind))
			case i >= len(n):
				why = append(why, fmt.Sprintf("%s %s removed", at, o[i].Kind))
			case o[i].Kind != n[i].Kind:
				why = append(why, fmt.Sprintf("%s: %s → %s", at, o[i].Kind, n[i].Kind))
			default:
				why = append(why, diffFields(at+" "+n[i].Kind+": ", o[i].Fields, n[i].Fields)...)
			}
		}
	}
	return why
}

func stepsOf(steps []StepInputs, list string) []StepInputs {
	var out []StepInputs
	for _, s := range steps {
		if s.List == list {
			out = append(out, s)
		}
	}
	return out
}

func unionKeys(a, b map[string]string) []string {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return sortedKeys(m)
}
