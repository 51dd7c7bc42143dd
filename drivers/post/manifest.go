package post

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/filelock"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// ManifestConfig is manifest()'s configuration.
type ManifestConfig struct {
	Output     string            `kw:"output" default:"manifest.json" doc:"The manifest file, relative to the workspace; builds sharing it each keep one entry."`
	StripPath  bool              `kw:"strip_path" default:"False" doc:"Record file names without their directories."`
	CustomData map[string]string `kw:"custom_data" doc:"Extra key/value pairs recorded with the build's entry."`
}

// Validate implements schema.Validator.
func (c *ManifestConfig) Validate(deferred schema.Deferred) error {
	if c.Output == "" && !deferred.Has("output") {
		return schema.Errorf("output", "is empty: name the manifest file, such as \"manifest.json\"")
	}
	return nil
}

// ManifestDef returns manifest()'s declaration.
func ManifestDef() *engine.PostProcessorDef {
	return &engine.PostProcessorDef{
		Schema: schema.Of("manifest",
			"Records the build's artifact (id, files with sizes and SHA-256 sums, fields) in a JSON manifest shared by the run's builds; the artifact is passed on unchanged.",
			&ManifestConfig{}),
		New: func(config any) (engine.PostProcessor, error) {
			cfg, ok := config.(*ManifestConfig)
			if !ok {
				return nil, fmt.Errorf("manifest: config is %T, want *post.ManifestConfig", config)
			}
			return &Manifest{cfg: cfg}, nil
		},
	}
}

// Manifest is the manifest() post-processor.
type Manifest struct {
	cfg *ManifestConfig
}

// ManifestData is the content of a manifest file, close to Packer's format.
type ManifestData struct {
	Builds      []json.RawMessage `json:"builds"`
	LastRunUUID string            `json:"last_run_uuid"`
}

// ManifestBuild is one build's entry.
type ManifestBuild struct {
	Name        string            `json:"name"`
	BuilderType string            `json:"builder_type"`
	BuildTime   int64             `json:"build_time"`
	Files       []ManifestFile    `json:"files"`
	ArtifactID  string            `json:"artifact_id"`
	Fields      map[string]any    `json:"fields,omitempty"`
	CustomData  map[string]string `json:"custom_data,omitempty"`
	RunUUID     string            `json:"run_uuid"`
}

// ManifestFile is one file of an artifact.
type ManifestFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"` // absent for what is not a regular file
}

var (
	runUUIDOnce sync.Once
	runUUID     string
)

// RunUUID identifies this process's run in manifests.
func RunUUID() string {
	runUUIDOnce.Do(func() {
		var b [16]byte
		_, _ = rand.Read(b[:])
		b[6] = b[6]&0x0f | 0x40 // version 4
		b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
		h := hex.EncodeToString(b[:])
		runUUID = h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	})
	return runUUID
}

// now is the clock of build_time.
var now = time.Now

// PostProcess implements engine.PostProcessor: it replaces the build's
// entry (by name) in the manifest, or adds it, and returns in unchanged.
func (m *Manifest) PostProcess(ctx context.Context, env *engine.PostEnv, in *engine.Artifact) (*engine.Artifact, error) {
	redact := env.Redact
	if redact == nil {
		redact = func(s string) string { return s }
	}
	entry := ManifestBuild{
		Name:        env.Build,
		BuilderType: env.Driver,
		BuildTime:   now().Unix(),
		ArtifactID:  in.ID,
		Fields:      in.Fields,
		CustomData:  m.cfg.CustomData,
		RunUUID:     RunUUID(),
		Files:       []ManifestFile{},
	}
	for _, f := range in.Files {
		var size int64
		var sum string
		ok, err := regular(inWorkspace(env, f))
		if err != nil {
			return nil, err
		}
		if ok {
			if size, sum, err = hashFile(ctx, inWorkspace(env, f)); err != nil {
				return nil, fmt.Errorf("recording artifact file %s: %w", f, err)
			}
		}
		name := f
		if m.cfg.StripPath {
			name = filepath.Base(f)
		}
		entry.Files = append(entry.Files, ManifestFile{Name: name, Size: size, SHA256: sum})
	}
	raw, err := redactedJSON(entry, redact)
	if err != nil {
		return nil, fmt.Errorf("encoding the manifest entry: %w", err)
	}

	abs, err := filepath.Abs(inWorkspace(env, m.cfg.Output))
	if err != nil {
		return nil, err
	}
	// Builds of this run and of runs beside it may write the manifest at
	// once: each replaces its entry holding the manifest's lock.
	unlock, err := filelock.Lock(ctx, filelock.For(env.Workspace, abs))
	if err != nil {
		return nil, err
	}
	defer unlock()
	man, err := readManifest(abs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.cfg.Output, err)
	}
	replaced := false
	for i, b := range man.Builds {
		var head struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(b, &head) == nil && head.Name == redact(env.Build) {
			man.Builds[i] = raw
			replaced = true
			break
		}
	}
	if !replaced {
		man.Builds = append(man.Builds, raw)
	}
	man.LastRunUUID = RunUUID()
	data, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the manifest: %w", err)
	}
	if err := output.WriteFile(abs, append(data, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("writing the manifest %s: %w", m.cfg.Output, err)
	}
	env.UI.Say("manifest: recorded %s in %s", env.Build, m.cfg.Output)
	return in, nil
}

// readManifest reads a manifest, or returns an empty one when the file does
// not exist.
func readManifest(p string) (*ManifestData, error) {
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &ManifestData{Builds: []json.RawMessage{}}, nil
	}
	if err != nil {
		return nil, err
	}
	var man ManifestData
	if err := json.Unmarshal(data, &man); err != nil {
		return nil, fmt.Errorf("exists but is not a manifest (%v): remove it or choose another output", err)
	}
	if man.Builds == nil {
		man.Builds = []json.RawMessage{}
	}
	return &man, nil
}

// redactedJSON encodes v with redact applied to every string in it, keys
// included, so that no secret reaches the file whatever characters it
// holds (redacting the encoded text would miss secrets that JSON escapes).
func redactedJSON(v any, redact func(string) string) (json.RawMessage, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	return json.Marshal(redactTree(tree, redact))
}

func redactTree(v any, redact func(string) string) any {
	switch v := v.(type) {
	case string:
		return redact(v)
	case []any:
		for i := range v {
			v[i] = redactTree(v[i], redact)
		}
		return v
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[redact(k)] = redactTree(e, redact)
		}
		return out
	}
	return v
}

// regular reports whether name is (or links to) a regular file; a symbolic
// link to a directory or to nothing (common in a root file system tree,
// /etc/resolv.conf say) is not, and is not an error.
func regular(name string) (bool, error) {
	fi, err := os.Stat(name)
	if err != nil {
		if li, lerr := os.Lstat(name); lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
			return false, nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("artifact file %s does not exist (was it removed after the build?)", name)
		}
		return false, err
	}
	return fi.Mode().IsRegular(), nil
}

// hashFile returns a file's size and SHA-256.
func hashFile(ctx context.Context, name string) (int64, string, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, f})
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}
