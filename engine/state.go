package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/filelock"
	"github.com/imgbuild/imgbuild/engine/output"
)

// State records, per build, the last run's outcome and artifact, with the
// fingerprint of the settings it was built from. Secrets never reach it:
// fingerprints are taken over the plan's redacted form and artifacts pass
// through the run's redaction.
type State struct {
	Builds map[string]*BuildState `json:"builds"`
}

// BuildState is one build's record.
type BuildState struct {
	Driver      string       `json:"driver"`
	Status      event.Status `json:"status"`
	Fingerprint string       `json:"fingerprint"`
	Finished    time.Time    `json:"finished"`
	Artifact    *Artifact    `json:"artifact,omitempty"`
	Error       string       `json:"error,omitempty"`
}

// Fingerprint identifies what a build was asked to do: its driver,
// settings, provisioners and post-processors as the plan shows them (so
// secrets are not part of it) and the edges it consumes.
func Fingerprint(p *PlannedBuild) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", p.Driver)
	for _, s := range p.Settings {
		fmt.Fprintf(h, "%s=%s\n", s.Keyword, s.Value)
	}
	for _, s := range p.Provisioners {
		fmt.Fprintf(h, "p:%s\n", s.Line)
	}
	for _, s := range p.PostProcessors {
		fmt.Fprintf(h, "pp:%s\n", s.Line)
	}
	for _, s := range p.ErrorCleanup {
		fmt.Fprintf(h, "ec:%s\n", s.Line)
	}
	for _, e := range p.Needs {
		fmt.Fprintf(h, "e:%s %s\n", e.From, e.Via)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// LoadState reads a state file; a missing file is an empty state.
func LoadState(path string) (*State, error) {
	s := &State{Builds: map[string]*BuildState{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("state file %s is damaged (%v); remove it to start afresh", path, err)
	}
	if s.Builds == nil {
		s.Builds = map[string]*BuildState{}
	}
	return s, nil
}

// Record stores a run's results; redact removes secrets from what is kept.
func (s *State) Record(plan *Plan, sum *Summary, redact func(string) string) {
	fps := map[string]string{}
	for _, b := range plan.Builds {
		fps[b.Name] = Fingerprint(b)
	}
	for _, r := range sum.Results {
		if r == nil {
			continue
		}
		bs := &BuildState{Driver: r.Driver, Status: r.Status, Fingerprint: fps[r.Build], Finished: time.Now().UTC()}
		if r.Artifact != nil {
			bs.Artifact = r.Artifact.Redacted(redact).(*Artifact)
		}
		if r.Err != nil {
			bs.Error = redact(r.Err.Error())
		}
		s.Builds[r.Build] = bs
	}
}

// Save writes the state atomically.
func (s *State) Save(path string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return output.WriteFile(path, append(data, '\n'), 0o644)
}

// UpdateState loads the state file at path, lets update change it and
// saves it, holding the file's lock from the read to the write, so that
// runs sharing a workspace at the same time never lose each other's
// records.
func UpdateState(ctx context.Context, path string, update func(*State)) error {
	return filelock.With(ctx, path+".lock", func() error {
		s, err := LoadState(path)
		if err != nil {
			return err
		}
		update(s)
		return s.Save(path)
	})
}

// Changed reports, for the plan, whether a build's fingerprint differs from
// its last successful run: "new", "changed" or "unchanged".
func (s *State) Changed(p *PlannedBuild) string {
	prev, ok := s.Builds[p.Name]
	switch {
	case !ok || prev.Status != event.Succeeded:
		return "new"
	case prev.Fingerprint != Fingerprint(p):
		return "changed"
	}
	return "unchanged"
}

// stateFileName is where state lives under the workspace.
const stateFileName = "state.json"

// StatePath is the state file of a workspace: <root>/.imgbuild/state.json.
func StatePath(root string) string {
	return filepath.Join(root, ".imgbuild", stateFileName)
}
