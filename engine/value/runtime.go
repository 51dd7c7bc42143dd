package value

import (
	"fmt"
	"strconv"
	"time"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// RunValue is a value known only when a run starts, and the same for every
// build of that run: the run's start time (timestamp) or its id (run_id).
// Descriptions stay deterministic: the plan shows "(at run: timestamp)" and
// fingerprints, taken over the plan, do not change from one run to the
// next. The engine replaces run values with their text at the start of a
// run (ResolveRun).
type RunValue struct {
	// Name is "timestamp" or "run_id".
	Name string
	// Layout formats a timestamp: a formatdate layout ("YYYYMMDD-hhmm"),
	// "unix" for seconds since 1970, or "" for RFC 3339 in UTC
	// ("2026-01-02T15:04:05Z"), as Packer's timestamp() gives it.
	Layout string
}

// Run value names.
const (
	RunTimestamp = "timestamp"
	RunID        = "run_id"
)

// LayoutUnix formats a timestamp as seconds since 1970, as Packer's legacy
// {{timestamp}} does.
const LayoutUnix = "unix"

// String is how the plan shows the value: timestamp,
// timestamp.format("YYYYMMDD"), timestamp.unix(), run_id.
func (r RunValue) String() string {
	switch {
	case r.Layout == LayoutUnix:
		return r.Name + ".unix()"
	case r.Layout != "":
		return r.Name + ".format(" + strconv.Quote(r.Layout) + ")"
	}
	return r.Name
}

// Shown is the value as the plan shows it: (at run: timestamp).
func (r RunValue) Shown() string { return "(at run: " + r.String() + ")" }

// RunInfo is what run values resolve from: one per run.
type RunInfo struct {
	Start time.Time
	ID    string
}

// Text returns the value for the run.
func (r RunValue) Text(info RunInfo) (string, error) {
	switch r.Name {
	case RunID:
		return info.ID, nil
	case RunTimestamp:
		return FormatTime(info.Start, r.Layout)
	}
	return "", fmt.Errorf("unknown run value %q", r.Name)
}

// FormatTime formats t (in UTC) with a formatdate layout, "unix", or ""
// for RFC 3339. The layout language is Packer's and Terraform's formatdate
// (YYYY, MM, DD, hh, mm, ss, 'quoted literals', ...): the same
// implementation, go-cty's.
func FormatTime(t time.Time, layout string) (string, error) {
	t = t.UTC()
	switch layout {
	case "":
		return t.Format(time.RFC3339), nil
	case LayoutUnix:
		return strconv.FormatInt(t.Unix(), 10), nil
	}
	out, err := stdlib.FormatDate(cty.StringVal(layout), cty.StringVal(t.Format(time.RFC3339)))
	if err != nil {
		return "", fmt.Errorf("layout %q: %v", layout, err)
	}
	return out.AsString(), nil
}

// CheckLayout reports whether layout is one FormatTime can use.
func CheckLayout(layout string) error {
	_, err := FormatTime(time.Unix(0, 0), layout)
	return err
}

// HasRun reports whether v holds a run value.
func HasRun(v Value) bool {
	found := false
	walkParts(v, func(p Part) {
		found = found || p.Run != nil
	})
	return found
}

func walkParts(v Value, fn func(Part)) {
	walkLeaves("", v, func(_ string, leaf Value) {
		if t, ok := leaf.(*Template); ok {
			for _, p := range t.Parts {
				fn(p)
			}
		}
	})
}

// ResolveRun returns v with every run value replaced by its text for the
// run; a template left with no references becomes a plain string. Values
// without run values are returned as they are.
func ResolveRun(v Value, info RunInfo) (Value, error) {
	if !HasRun(v) {
		return v, nil
	}
	return MapTemplates(v, func(v *Template) (Value, error) {
		var out []Part
		for _, p := range v.Parts {
			if p.Run != nil {
				s, err := p.Run.Text(info)
				if err != nil {
					return nil, err
				}
				p = Part{Lit: s}
			}
			if n := len(out); n > 0 && p.Ref == nil && out[n-1].Ref == nil && out[n-1].Sensitive == p.Sensitive {
				out[n-1].Lit += p.Lit
				continue
			}
			out = append(out, p)
		}
		switch {
		case len(out) == 0:
			return String{}, nil
		case len(out) == 1 && out[0].Ref == nil:
			return String{S: out[0].Lit, Sensitive: out[0].Sensitive}, nil
		}
		return &Template{Parts: out}, nil
	})
}
