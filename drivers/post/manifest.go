package post

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// ManifestConfig is manifest()'s configuration.
type ManifestConfig struct {
	Output     string            `kw:"output" default:"manifest.json" path:"output-shared" doc:"The manifest file, relative to the workspace; builds sharing it each keep one entry. A file that is not an imgbuild manifest is never replaced."`
	StripPath  bool              `kw:"strip_path" default:"False" doc:"Record file names without their directories."`
	CustomData map[string]string `kw:"custom_data" doc:"Extra key/value pairs recorded with the build's entry."`
	SBOMOutput string            `kw:"sbom_output" path:"output" doc:"The image's SPDX 2.3 JSON SBOM (its installed packages, with package URLs), relative to the workspace; empty puts it beside the manifest as BUILD.spdx.json. Written when the build listed the image's packages."`
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
		New: engine.Typed("manifest", func(cfg *ManifestConfig) engine.PostProcessor { return &Manifest{cfg: cfg} }),
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
	// Fingerprint is the build's input fingerprint, and Upstream the
	// artifacts it was built from: what an image was made of.
	Fingerprint string            `json:"fingerprint,omitempty"`
	Upstream    []engine.Upstream `json:"upstream,omitempty"`
	// PackageManager and Packages are what is installed in the image,
	// as listed after provisioning.
	PackageManager string           `json:"package_manager,omitempty"`
	Packages       []engine.Package `json:"packages,omitempty"`
	Distro         string           `json:"distro,omitempty"`
	DistroVersion  string           `json:"distro_version,omitempty"`
	// SBOM is the image's SPDX SBOM file, when one was written.
	SBOM string `json:"sbom,omitempty"`
	// Tests are how the image's tests ended.
	Tests []ManifestTest `json:"tests,omitempty"`
}

// ManifestTest is one of the build's tests in its entry.
type ManifestTest struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Status   string   `json:"status"`
	Duration float64  `json:"duration_seconds"`
	Output   []string `json:"output_tail,omitempty"`
	Error    string   `json:"error,omitempty"`
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
	runUUIDOnce.Do(func() { runUUID = newUUID() })
	return runUUID
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
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
	if r := env.Report; r != nil {
		entry.Fingerprint, entry.Upstream = r.Fingerprint, r.Upstream
		entry.PackageManager, entry.Packages = r.PackageManager, r.Packages
		entry.Distro, entry.DistroVersion = r.Distro, r.DistroVersion
		for _, t := range r.Tests {
			entry.Tests = append(entry.Tests, ManifestTest{Name: t.Name, Kind: t.Kind, Status: string(t.Status), Duration: t.Duration.Seconds(), Output: t.Output, Error: t.Error})
		}
	}
	var skipped []string
	for _, f := range in.Files {
		h := sha256.New()
		size, skip, err := hashArtifactFile(ctx, env, f, h)
		if err != nil {
			return nil, err // it names f
		}
		sum := hex.EncodeToString(h.Sum(nil))
		if skip != "" {
			sum = ""
			skipped = append(skipped, f+" ("+skip+")")
		}
		name := f
		if m.cfg.StripPath {
			name = filepath.Base(f)
		}
		entry.Files = append(entry.Files, ManifestFile{Name: name, Size: size, SHA256: sum})
	}
	if len(skipped) > 0 {
		env.UI.Say("manifest: recorded %d file(s) without a checksum: %s", len(skipped), strings.Join(skipped, ", "))
	}
	rel := output.Expand(m.cfg.Output, env.Build, env.Driver)
	if r := env.Report; r != nil && r.PackageManager != "" {
		sbom, err := m.writeSBOM(env, in, r, rel, redact)
		if err != nil {
			return nil, err
		}
		entry.SBOM = sbom
	}
	raw, err := redactedJSON(entry, redact)
	if err != nil {
		return nil, fmt.Errorf("encoding the manifest entry: %w", err)
	}

	// Builds of this run and of runs beside it may write the manifest at
	// once: each replaces its entry holding the manifest's lock.
	err = env.UpdateShared(ctx, rel, "output", func(old []byte) ([]byte, error) {
		man, err := parseManifest(old)
		if err != nil {
			return nil, fmt.Errorf("%s %w", rel, err)
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
		return append(data, '\n'), nil
	})
	if err != nil {
		return nil, err
	}
	env.UI.Say("manifest: recorded %s in %s", env.Build, rel)
	return in, nil
}

// writeSBOM writes the image's SPDX SBOM (sbom_output, else BUILD.spdx.json
// beside the manifest rel) and returns its name.
func (m *Manifest) writeSBOM(env *engine.PostEnv, in *engine.Artifact, r *engine.Report, rel string, redact func(string) string) (string, error) {
	name := output.Expand(m.cfg.SBOMOutput, env.Build, env.Driver)
	if name == "" {
		name = filepath.Join(filepath.Dir(rel), env.Build+".spdx.json")
	}
	data, err := EncodeSBOM(SBOM(env.Build, env.Driver, in, r, now()))
	if err == nil {
		data, err = redactedJSON(json.RawMessage(data), redact)
	}
	if err == nil {
		var indented bytes.Buffer
		if err = json.Indent(&indented, data, "", "  "); err == nil {
			data = append(indented.Bytes(), '\n')
		}
	}
	if err != nil {
		return "", fmt.Errorf("encoding the SBOM: %w", err)
	}
	if _, err := env.OutputSet().WriteFile(name, "sbom_output", data, 0o644); err != nil {
		return "", err
	}
	env.UI.Say("manifest: wrote the SBOM of %s (%d packages, SPDX 2.3) to %s", env.Build, len(r.Packages), name)
	return name, nil
}

// parseManifest reads a manifest's content (nil for a file not there yet:
// an empty manifest). Content that is not an imgbuild manifest (a JSON
// object with a "builds" list of named entries, and the last run's id) is
// an error: such a file is not replaced.
func parseManifest(data []byte) (*ManifestData, error) {
	if data == nil {
		return &ManifestData{Builds: []json.RawMessage{}}, nil
	}
	why := func(format string, args ...any) error {
		return fmt.Errorf("exists and is not an imgbuild manifest (%s): move it away or choose another output", fmt.Sprintf(format, args...))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, why("it is not a JSON object: %v", err)
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if k != "builds" && k != "last_run_uuid" {
			return nil, why("it has the key %q", k)
		}
	}
	var man ManifestData
	if _, ok := top["builds"]; !ok {
		return nil, why("it has no \"builds\" list")
	}
	if err := json.Unmarshal(data, &man); err != nil {
		return nil, why("%v", err)
	}
	for i, b := range man.Builds {
		var head struct {
			Name *string `json:"name"`
		}
		if json.Unmarshal(b, &head) != nil || head.Name == nil {
			return nil, why("build %d has no name", i)
		}
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
