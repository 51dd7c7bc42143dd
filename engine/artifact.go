package engine

import (
	"fmt"
	"sort"

	"github.com/imgbuild/imgbuild/engine/value"
)

// Artifact is what a build produced: an image id, the files written, and
// driver-specific fields that other builds may refer to.
type Artifact struct {
	Build    string         `json:"build"`
	Driver   string         `json:"driver"`
	ID       string         `json:"id"`
	Platform string         `json:"platform,omitempty"` // "aws", "vsphere", "local", ...
	Region   string         `json:"region,omitempty"`
	Files    []string       `json:"files,omitempty"`
	Fields   map[string]any `json:"fields,omitempty"` // string, int, bool, []string or map[string]string
}

// Output returns the value of the named output, for references.
func (a *Artifact) Output(name string) (value.Value, error) {
	switch name {
	case "id":
		return value.String{S: a.ID}, nil
	case "files":
		return value.FromGo(append([]string{}, a.Files...)), nil
	case "name":
		return value.String{S: a.Build}, nil
	}
	if v, ok := a.Fields[name]; ok {
		return value.FromGo(v), nil
	}
	have := []string{"id", "files", "name"}
	for k := range a.Fields {
		have = append(have, k)
	}
	sort.Strings(have)
	return nil, fmt.Errorf("build %q produced no output %q (it has %v)", a.Build, name, have)
}

// Redacted returns a copy with redact applied to every string, for the
// event bus.
func (a *Artifact) Redacted(redact func(string) string) any {
	c := *a
	c.ID = redact(a.ID)
	c.Files = make([]string, len(a.Files))
	for i, f := range a.Files {
		c.Files[i] = redact(f)
	}
	c.Fields = map[string]any{}
	for k, v := range a.Fields {
		switch v := v.(type) {
		case string:
			c.Fields[k] = redact(v)
		case []string:
			out := make([]string, len(v))
			for i, s := range v {
				out[i] = redact(s)
			}
			c.Fields[k] = out
		case map[string]string:
			out := map[string]string{}
			for mk, s := range v {
				out[mk] = redact(s)
			}
			c.Fields[k] = out
		default:
			c.Fields[k] = v
		}
	}
	return &c
}
