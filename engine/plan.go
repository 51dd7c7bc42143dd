package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
)

// Plan is what a run would do: the builds in waves of what can run
// together, each with its settings, steps and the edges it consumes.
type Plan struct {
	Waves  [][]*PlannedBuild `json:"-"`
	Builds []*PlannedBuild   `json:"builds"`
	// Variables are the description's variables as WriteJSON shows them,
	// sensitive values as "(sensitive)". The command line sets them (a
	// slice of values that marshal to JSON objects): the engine knows no
	// Starlark. Nil shows as [].
	Variables any `json:"-"`
}

// PlannedBuild is one build in a Plan.
type PlannedBuild struct {
	Name           string    `json:"name"`
	Driver         string    `json:"driver"`
	Pos            string    `json:"position"`
	Wave           int       `json:"wave"`
	Settings       []Setting `json:"settings"`
	Provisioners   []Step    `json:"provisioners"`
	ErrorCleanup   []Step    `json:"error_cleanup,omitempty"`
	Tests          []Step    `json:"tests,omitempty"`
	PostProcessors []Step    `json:"post_processors"`
	Needs          []Edge    `json:"needs"`
	// Mark says what a run would do, compared with state: "new", "up to
	// date" or "rebuild" ("" when the plan was not compared). Reasons
	// say why a build is rebuilt; Built and Artifact what an up-to-date
	// build's last build was.
	Mark     Mark       `json:"mark,omitempty"`
	Reasons  []string   `json:"reasons,omitempty"`
	Built    *time.Time `json:"built,omitempty"`
	Artifact string     `json:"artifact,omitempty"`
	// Notes say what a run would reuse (BuilderDef.PlanNotes); none for
	// a build that is up to date.
	Notes []string `json:"notes,omitempty"`
}

// Setting is one keyword of a build as the plan shows it.
type Setting struct {
	Keyword string `json:"keyword"`
	Value   string `json:"value"` // formatted; secrets as (sensitive)
	JSON    any    `json:"json"`
	// Resolved is what a lookup found, with plan --refresh.
	Resolved string `json:"resolved,omitempty"`

	lookup *value.Object
	build  *value.Map // the settings the lookup was given with
}

// Step is a provisioner or post-processor as the plan shows it.
type Step struct {
	Kind string `json:"kind"`
	Pos  string `json:"position"`
	Line string `json:"line"` // kind(keyword = value, ...)
	// Name is a test's name, as its results show it.
	Name string `json:"name,omitempty"`
}

// MakePlan builds the plan of g. reg marks keywords that are always
// sensitive; workspace, if set, is stripped from paths so plans read the
// same on every machine.
func MakePlan(g *Graph, reg *Registry, workspace string) *Plan {
	p := &Plan{}
	rel := func(s string) string {
		if workspace == "" {
			return s
		}
		return strings.ReplaceAll(s, strings.TrimSuffix(workspace, "/")+"/", "")
	}
	for wi, wave := range g.Waves() {
		var pw []*PlannedBuild
		for _, n := range wave {
			pb := &PlannedBuild{Name: n.Name, Driver: n.Driver, Pos: rel(n.Pos), Wave: wi + 1, Needs: g.Edges(n)}
			if pb.Needs == nil {
				pb.Needs = []Edge{}
			}
			pb.Settings = settings(n.Settings, n.Driver, reg, rel)
			pb.Notes = planNotes(n, reg)
			for _, o := range n.Provisioners {
				pb.Provisioners = append(pb.Provisioners, planStep(o, reg, rel))
			}
			for _, o := range n.PostProcessors {
				pb.PostProcessors = append(pb.PostProcessors, planStep(o, reg, rel))
			}
			for _, o := range n.ErrorCleanup {
				pb.ErrorCleanup = append(pb.ErrorCleanup, planStep(o, reg, rel))
			}
			for i, o := range n.Tests {
				ps := planStep(o, reg, rel)
				ps.Name = TestName(n.Tests, i, workspace)
				pb.Tests = append(pb.Tests, ps)
			}
			if pb.Provisioners == nil {
				pb.Provisioners = []Step{}
			}
			if pb.PostProcessors == nil {
				pb.PostProcessors = []Step{}
			}
			pw = append(pw, pb)
			p.Builds = append(p.Builds, pb)
		}
		p.Waves = append(p.Waves, pw)
	}
	return p
}

// planNotes asks the build's driver what a run would reuse, when its
// settings can be decoded without running anything.
func planNotes(n *Node, reg *Registry) []string {
	if reg == nil {
		return nil
	}
	def := reg.Builders[n.Driver]
	if def == nil || def.PlanNotes == nil {
		return nil
	}
	settings, err := value.Resolve(n.Settings, func(r value.Ref) (value.Value, error) {
		return nil, fmt.Errorf("%s is made by the run", r.Build)
	})
	if err != nil {
		return nil
	}
	if settings, err = value.ResolveRun(settings, value.RunInfo{}); err != nil {
		return nil
	}
	m, ok := settings.(*value.Map)
	if !ok {
		return nil
	}
	cfg := def.Schema.New()
	if _, err := def.Schema.Decode(m, cfg, schema.Options{}); err != nil {
		return nil
	}
	return def.PlanNotes(cfg)
}

func sensitiveKeyword(reg *Registry, kind, kw string) bool {
	if reg == nil {
		return false
	}
	s, ok := reg.Schema(kind)
	if !ok {
		return false
	}
	f, ok := s.Field(kw)
	return ok && f.Sensitive
}

func settings(m *value.Map, kind string, reg *Registry, rel func(string) string) []Setting {
	out := []Setting{}
	if m == nil {
		return out
	}
	for _, k := range m.Keys {
		v := m.Values[k]
		s := Setting{Keyword: k, Value: rel(value.Format(v)), JSON: value.ToJSON(v)}
		if o, ok := v.(*value.Object); ok && reg != nil && reg.Lookups[o.Kind] != nil {
			s.lookup, s.build = o, m
		}
		if sensitiveKeyword(reg, kind, k) {
			s.Value, s.JSON = "(sensitive)", "(sensitive)"
		}
		if str, ok := s.JSON.(string); ok {
			s.JSON = rel(str)
		}
		out = append(out, s)
	}
	return out
}

func planStep(o *value.Object, reg *Registry, rel func(string) string) Step {
	var parts []string
	for _, k := range o.Fields.Keys {
		v := value.Format(o.Fields.Values[k])
		if sensitiveKeyword(reg, o.Kind, k) {
			v = "(sensitive)"
		}
		parts = append(parts, k+" = "+rel(v))
	}
	return Step{Kind: o.Kind, Pos: rel(o.Pos), Line: o.Kind + "(" + strings.Join(parts, ", ") + ")"}
}

// Refresh resolves every lookup in the builds' settings (read-only: an
// image search, say) and records what it found. The first error stops it.
func (p *Plan) Refresh(ctx context.Context, reg *Registry) error {
	f := &Fingerprinter{Registry: reg}
	for _, b := range p.Builds {
		for i := range b.Settings {
			s := &b.Settings[i]
			if s.lookup == nil {
				continue
			}
			found, err := f.lookup(ctx, s.lookup, s.build)
			if err != nil {
				return fmt.Errorf("build %q: %s: %s at %s: %w", b.Name, s.Keyword, s.lookup.Kind, s.lookup.Pos, err)
			}
			s.resolved(found)
		}
	}
	return nil
}

func (s *Setting) resolved(found string) {
	s.Resolved = found
	s.Value += " → " + found
}

// SetMarks records what a run would do with each build (Assessor.Assess),
// and what the assessment's lookups found.
func (p *Plan) SetMarks(as map[string]*Assessment) {
	for _, b := range p.Builds {
		a, ok := as[b.Name]
		if !ok {
			continue
		}
		b.Mark, b.Reasons = a.Mark, a.Reasons
		if a.Mark == MarkUpToDate {
			b.Notes = nil // nothing runs
		}
		if a.Mark == MarkUpToDate && a.Prev.Built() {
			t := a.Prev.Finished
			b.Built, b.Artifact = &t, a.Prev.Artifact.ID
		}
		if a.Inputs == nil {
			continue
		}
		for i := range b.Settings {
			if found, ok := a.Inputs.Lookups[b.Settings[i].Keyword]; ok && b.Settings[i].lookup != nil {
				b.Settings[i].resolved(found)
			}
		}
	}
}

// counts says how many builds have each mark: "1 new, 2 to rebuild, 3 up
// to date".
func (p *Plan) counts() string {
	n := map[Mark]int{}
	for _, b := range p.Builds {
		n[b.Mark]++
	}
	var parts []string
	if n[MarkNew] > 0 {
		parts = append(parts, fmt.Sprintf("%d new", n[MarkNew]))
	}
	if n[MarkRebuild] > 0 {
		parts = append(parts, fmt.Sprintf("%d to rebuild", n[MarkRebuild]))
	}
	if n[MarkUpToDate] > 0 {
		parts = append(parts, fmt.Sprintf("%d up to date", n[MarkUpToDate]))
	}
	return strings.Join(parts, ", ")
}

// WriteText writes the plan for people.
func (p *Plan) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	builds := len(p.Builds)
	ew.printf("Plan: %d %s in %d %s", builds, plural(builds, "build", "builds"), len(p.Waves), plural(len(p.Waves), "wave", "waves"))
	if c := p.counts(); c != "" {
		ew.printf(": %s", c)
	}
	ew.printf("\n")
	for wi, wave := range p.Waves {
		names := make([]string, len(wave))
		for i, b := range wave {
			names[i] = b.Name
		}
		ew.printf("\nWave %d: %s\n", wi+1, strings.Join(names, ", "))
		for _, b := range wave {
			if b.Mark == "" {
				ew.printf("\n  %s (%s) at %s\n", b.Name, b.Driver, b.Pos)
			} else {
				ew.printf("\n  %s %s (%s) at %s\n", b.Mark.Symbol(), b.Name, b.Driver, b.Pos)
			}
			switch b.Mark {
			case MarkNew:
				ew.printf("    new: not built before\n")
			case MarkUpToDate:
				line := "    up to date"
				if b.Built != nil {
					line += ": built " + b.Built.Local().Format("2006-01-02 15:04:05")
					if b.Artifact != "" {
						line += ", artifact " + b.Artifact
					}
				}
				ew.printf("%s\n", line)
			case MarkRebuild:
				ew.printf("    rebuild:\n")
				for _, r := range b.Reasons {
					ew.printf("      %s\n", r)
				}
			}
			for _, note := range b.Notes {
				ew.printf("    %s\n", note)
			}
			if len(b.Needs) > 0 {
				ew.printf("    needs:\n")
				for _, e := range b.Needs {
					if e.Via == "depends_on" {
						ew.printf("      %s (depends_on)\n", e.From)
					} else {
						ew.printf("      %s.%s\n", b.Name, e.Via)
					}
				}
			}
			if len(b.Settings) > 0 {
				width := 0
				for _, s := range b.Settings {
					width = max(width, len(s.Keyword))
				}
				ew.printf("    settings:\n")
				for _, s := range b.Settings {
					ew.printf("      %-*s = %s\n", width, s.Keyword, s.Value)
				}
			}
			if len(b.Provisioners) > 0 {
				ew.printf("    provisioners:\n")
				for i, s := range b.Provisioners {
					ew.printf("      %d. %s\n", i+1, clip(s.Line))
				}
			}
			if len(b.ErrorCleanup) > 0 {
				ew.printf("    error_cleanup (when a provisioner fails):\n")
				for i, s := range b.ErrorCleanup {
					ew.printf("      %d. %s\n", i+1, clip(s.Line))
				}
			}
			if len(b.Tests) > 0 {
				ew.printf("    tests (on a machine launched from the new image, before it is published):\n")
				for i, s := range b.Tests {
					ew.printf("      %d. %s: %s\n", i+1, s.Name, clip(s.Line))
				}
			}
			if len(b.PostProcessors) > 0 {
				ew.printf("    post-processors:\n")
				for i, s := range b.PostProcessors {
					ew.printf("      %d. %s\n", i+1, clip(s.Line))
				}
			}
		}
	}
	return ew.err
}

// WriteJSON writes the plan as one JSON document.
func (p *Plan) WriteJSON(w io.Writer) error {
	type wave struct {
		Wave   int      `json:"wave"`
		Builds []string `json:"builds"`
	}
	doc := struct {
		Waves     []wave          `json:"waves"`
		Builds    []*PlannedBuild `json:"builds"`
		Variables any             `json:"variables"`
	}{Builds: p.Builds, Variables: p.Variables}
	if doc.Variables == nil {
		doc.Variables = []struct{}{}
	}
	for i, wv := range p.Waves {
		names := make([]string, len(wv))
		for j, b := range wv {
			names[j] = b.Name
		}
		doc.Waves = append(doc.Waves, wave{Wave: i + 1, Builds: names})
	}
	if doc.Builds == nil {
		doc.Builds = []*PlannedBuild{}
	}
	if doc.Waves == nil {
		doc.Waves = []wave{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// WriteDot writes the plan as a Graphviz digraph: a node per build, an
// edge per consumed output.
func (p *Plan) WriteDot(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("digraph imgbuild {\n  rankdir=LR;\n  node [shape=box];\n")
	for _, b := range p.Builds {
		ew.printf("  %q [label=%q];\n", b.Name, b.Name+"\n("+b.Driver+")")
	}
	for _, b := range p.Builds {
		for _, e := range b.Needs {
			ew.printf("  %q -> %q [label=%q];\n", e.From, e.To, e.Via)
		}
	}
	ew.printf("}\n")
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// maxLine is the longest step line the text plan shows; the JSON plan has
// every line whole.
const maxLine = 160

func clip(s string) string {
	r := []rune(s)
	if len(r) <= maxLine {
		return s
	}
	return string(r[:maxLine-1]) + "…"
}
