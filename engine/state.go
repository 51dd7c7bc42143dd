package engine

import (
	"context"
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

// State records, per build, what its last successful build was made from
// and what it made, and how its last run ended. Secrets never reach it:
// inputs hold only keyed digests of them, and artifacts and errors pass
// through the run's redaction.
type State struct {
	Builds map[string]*BuildState `json:"builds"`
}

// BuildState is one build's record.
type BuildState struct {
	Driver string `json:"driver"`
	// Status is how the last run of the build ended.
	Status event.Status `json:"status"`
	// Fingerprint, Inputs, Finished, Artifact and Files describe the last
	// successful build: what it was made from, when it ended, what it
	// made, and the sums of the artifact's local files. A failed run
	// leaves them as they were.
	Fingerprint string             `json:"fingerprint,omitempty"`
	Inputs      *Inputs            `json:"inputs,omitempty"`
	Finished    time.Time          `json:"finished"`
	Artifact    *Artifact          `json:"artifact,omitempty"`
	Files       map[string]FileSum `json:"files,omitempty"`
	// Runner names who made it ("ci-7 pid 4242").
	Runner string `json:"runner,omitempty"`
	// Error is why the last run failed, when it did, and FailedAt when.
	Error    string     `json:"error,omitempty"`
	FailedAt *time.Time `json:"failed_at,omitempty"`
}

// Built reports whether the record holds a successful build.
func (b *BuildState) Built() bool {
	return b != nil && b.Artifact != nil && b.Fingerprint != ""
}

// Identity is the identity of the recorded artifact (ArtifactIdentity).
func (b *BuildState) Identity() string {
	if !b.Built() {
		return ""
	}
	return ArtifactIdentity(b.Artifact, b.Files)
}

// After returns the record that follows b once a run of the build ended
// with r: a success replaces what was built; a failure keeps it and says
// why the run failed.
func (b *BuildState) After(r *Result, in *Inputs, runner string, redact func(string) string) *BuildState {
	now := time.Now().UTC()
	if r.Status.OK() && r.Status != event.UpToDate {
		rec := &BuildState{Driver: r.Driver, Status: r.Status, Finished: now, Runner: runner, Files: r.Files}
		if in != nil {
			rec.Inputs, rec.Fingerprint = in, in.Fingerprint()
		}
		if r.Artifact != nil {
			rec.Artifact = r.Artifact.Redacted(redact).(*Artifact)
		}
		return rec
	}
	rec := &BuildState{Driver: r.Driver}
	if b != nil {
		c := *b
		rec = &c
	}
	rec.Status = r.Status
	if r.Status == event.UpToDate {
		rec.Error, rec.FailedAt = "", nil
		return rec
	}
	if r.Err != nil {
		rec.Error = redact(r.Err.Error())
	}
	rec.FailedAt = &now
	return rec
}

// LoadState reads a state file and the records appended to its log since
// it was last written whole; a missing file is an empty state.
func LoadState(path string) (*State, error) {
	s := &State{Builds: map[string]*BuildState{}}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(data, s); err != nil {
			return nil, fmt.Errorf("state file %s is damaged (%v); remove it to start afresh (every build is then new)", path, err)
		}
		if s.Builds == nil {
			s.Builds = map[string]*BuildState{}
		}
	}
	if err := readStateLog(path+".log", s); err != nil {
		return nil, err
	}
	return s, nil
}

// Save writes the state atomically.
func (s *State) Save(path string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return output.WriteFile(path, append(data, '\n'), 0o644)
}

// UpdateState loads the state file at path (with its log), lets update
// change it and saves it whole, emptying the log, holding the file's lock
// from the read to the write, so that runs sharing a workspace at the same
// time never lose each other's records.
func UpdateState(ctx context.Context, path string, update func(*State)) error {
	return filelock.With(ctx, path+".lock", func() error {
		s, err := LoadState(path)
		if err != nil {
			return err
		}
		update(s)
		if err := s.Save(path); err != nil {
			return err
		}
		if err := os.Remove(path + ".log"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
}

// stateFileName is where state lives under the workspace.
const stateFileName = "state.json"

// StatePath is the state file of a workspace: <root>/.imgbuild/state.json.
func StatePath(root string) string {
	return filepath.Join(root, ".imgbuild", stateFileName)
}
