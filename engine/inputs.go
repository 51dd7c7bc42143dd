package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
)

// Inputs are everything a build's result depends on, each part named so
// that a change names its reason: the driver and its version, the
// normalized settings, the provisioners, post-processors and error_cleanup
// steps, the content of every local file and directory they read, the
// identity of each upstream artifact consumed and what each lookup found.
//
// The workspace's own files count through what they contribute:
// evaluation is hermetic, so the values their code makes (settings,
// steps) and the files they name are a pure function of their text and
// the description's inputs, and they are all here. Hashing their raw text
// instead would rebuild every build when a comment or another build's
// function changes. External modules (the ones imgbuild.mod declares)
// count by their content hash as well: a new version of a shared module
// is a deliberate change that names itself as the reason ("module
// platform changed"), and the files read from them are named by label
// (@platform//files/motd), not by where the module cache happens to be.
//
// Secrets appear only as keyed digests (FingerprintKey) and run values
// (timestamp(), run_id()) as their names, so neither a timestamp nor a
// leaked state file says anything about them.
type Inputs struct {
	Driver   string            `json:"driver"`
	Settings map[string]string `json:"settings"`
	Steps    []StepInputs      `json:"steps,omitempty"`
	// Files maps a file or directory read (relative to the workspace), or
	// the origin of a text read into a keyword (read_file("//x")), to its
	// digest.
	Files map[string]string `json:"files,omitempty"`
	// Upstream maps each build this one consumes to its artifact's
	// identity (ArtifactIdentity).
	Upstream map[string]string `json:"upstream,omitempty"`
	// Lookups maps a keyword given a lookup (aws_ami(...)) to what it found.
	Lookups map[string]string `json:"lookups,omitempty"`
	// Modules maps each external module the description loaded to its
	// content hash.
	Modules map[string]string `json:"modules,omitempty"`
	// KeyID names the FingerprintKey that hashed the secrets, when any
	// counts.
	KeyID string `json:"key_id,omitempty"`
}

// StepInputs is one provisioner, post-processor or error_cleanup step.
type StepInputs struct {
	List   string            `json:"list"` // "provisioners", "post", "error_cleanup", "tests"
	Kind   string            `json:"kind"` // "shell", or "shell@2" with a version
	Fields map[string]string `json:"fields"`
}

// Fingerprint is the digest of the inputs.
func (in *Inputs) Fingerprint() string {
	data, _ := json.Marshal(in) // maps are written sorted
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

// pendingIdentity stands for the artifact of an upstream build that is
// still to be built.
const pendingIdentity = "(to be built)"

// ArtifactIdentity names an artifact by everything a consumer can read of
// it: id, platform, region, fields, and the content of its local files.
// A rebuilt base has a new identity (a new AMI id, other bytes), so its
// dependents rebuild; one rebuilt to the same bytes does not.
func ArtifactIdentity(a *Artifact, sums map[string]FileSum) string {
	if a == nil {
		return ""
	}
	h := sha256.New()
	fields, _ := json.Marshal(a.Fields)
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", a.ID, a.Platform, a.Region, fields)
	for _, f := range a.Files {
		fmt.Fprintf(h, "%s\x00%s\x00", f, sums[f].SHA256)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Fingerprinter computes builds' Inputs. It hashes each file once however
// many builds read it, and resolves each distinct lookup once.
type Fingerprinter struct {
	Registry *Registry
	// Workspace is the description's root: paths are shown relative to
	// it, so that runners with checkouts in different places agree.
	Workspace string
	// Key hashes secrets; nil counts every secret as "(sensitive)", so a
	// changed secret would go unnoticed (tests only).
	Key *FingerprintKey
	// Modules maps each external module the description loaded (by name)
	// to its content hash; every build counts them.
	Modules map[string]string
	// ModuleDirs maps those modules' directories to the label prefix
	// paths inside them are shown with ("@platform//"), so that runners
	// whose module caches are in different places agree.
	ModuleDirs map[string]string

	files   digests
	mu      sync.Mutex
	lookups map[string]*lookupResult
}

type lookupResult struct {
	once  sync.Once
	found string
	err   error
}

// Inputs returns what n depends on; upstream maps each build n consumes to
// its artifact's identity (pendingIdentity for one still to be built).
// With lookups, each lookup is resolved (read-only, through the network)
// and what it finds counts; a lookup that fails is an error naming the
// build and keyword.
func (f *Fingerprinter) Inputs(ctx context.Context, n *Node, upstream map[string]string, lookups bool) (*Inputs, error) {
	in := &Inputs{Driver: n.Driver, Settings: map[string]string{}, Files: map[string]string{}, Upstream: map[string]string{}, Lookups: map[string]string{}}
	reg := f.Registry
	secret := false
	format := value.Formatting{
		Secret: func(text string) string {
			secret = true
			if f.Key == nil {
				return "(sensitive)"
			}
			return "(sensitive " + f.Key.Hash(text) + ")"
		},
		Origin: func(s value.String) string {
			sum := sha256.Sum256([]byte(s.S))
			in.Files[s.Origin] = "sha256:" + hex.EncodeToString(sum[:])
			return s.Origin
		},
	}
	text := func(v value.Value) string { return f.rel(value.FormatWith(v, format)) }
	var schemaOf *schema.Schema
	if def, ok := reg.Builders[n.Driver]; ok {
		schemaOf = def.Schema
		if def.Version != "" {
			in.Driver += "@" + def.Version
		}
	}
	for _, k := range n.Settings.Keys {
		v := n.Settings.Values[k]
		in.Settings[k] = text(v)
		if o, ok := v.(*value.Object); ok && reg.Lookups[o.Kind] != nil && lookups {
			found, err := f.lookup(ctx, o, n.Settings)
			if err != nil {
				return nil, fmt.Errorf("build %q: %s: %s at %s: %w", n.Name, k, o.Kind, o.Pos, err)
			}
			in.Lookups[k] = found
		}
	}
	if err := f.addFiles(in, schemaOf, n.Settings); err != nil {
		return nil, fmt.Errorf("build %q: %w", n.Name, err)
	}
	lists := []struct {
		name string
		objs []*value.Object
	}{{"provisioners", n.Provisioners}, {"error_cleanup", n.ErrorCleanup}, {"tests", n.Tests}, {"post", n.PostProcessors}}
	for _, l := range lists {
		for _, o := range l.objs {
			st := StepInputs{List: l.name, Kind: o.Kind, Fields: map[string]string{}}
			for _, k := range o.Fields.Keys {
				st.Fields[k] = text(o.Fields.Values[k])
			}
			s, version := reg.stepSchema(o.Kind)
			if version != "" {
				st.Kind += "@" + version
			}
			if err := f.addFiles(in, s, &o.Fields); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", o.Pos, o.Kind, err)
			}
			in.Steps = append(in.Steps, st)
		}
	}
	for build, id := range upstream {
		in.Upstream[build] = id
	}
	if len(f.Modules) > 0 {
		in.Modules = map[string]string{}
		for name, sum := range f.Modules {
			in.Modules[name] = sum
		}
	}
	if secret && f.Key != nil {
		in.KeyID = f.Key.ID()
	}
	return in, nil
}

// stepSchema returns the schema and version of a provisioner or
// post-processor.
func (r *Registry) stepSchema(kind string) (*schema.Schema, string) {
	if d, ok := r.Provisioners[kind]; ok {
		return d.Schema, d.Version
	}
	if d, ok := r.PostProcessors[kind]; ok {
		return d.Schema, d.Version
	}
	return nil, ""
}

// rel shows workspace paths relative to it, and module paths by label.
func (f *Fingerprinter) rel(s string) string {
	dirs := sortedKeys(f.ModuleDirs)
	sort.SliceStable(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) }) // the innermost first
	for _, dir := range dirs {
		s = strings.ReplaceAll(s, strings.TrimSuffix(dir, "/")+"/", f.ModuleDirs[dir])
	}
	if f.Workspace == "" {
		return s
	}
	return strings.ReplaceAll(s, strings.TrimSuffix(f.Workspace, "/")+"/", "")
}

// addFiles hashes the files and directories the settings name through
// path-tagged keywords of s: the one declaration of which keywords are
// file inputs. Credentials read from anywhere on this machine
// (pathscope:"machine", an SSH key) are not inputs of the image.
func (f *Fingerprinter) addFiles(in *Inputs, s *schema.Schema, settings *value.Map) error {
	if s == nil {
		return nil
	}
	for _, pv := range s.Paths(settings) {
		if pv.Field.PathAnywhere || pv.Field.Path.IsOutput() {
			continue
		}
		for _, p := range pv.Paths {
			if !filepath.IsAbs(p) {
				p = filepath.Join(f.Workspace, p)
			}
			p = filepath.Clean(p)
			sum, err := f.files.of(p)
			if err != nil {
				return fmt.Errorf("%s: reading the input %s: %w", pv.Keyword, f.rel(p), err)
			}
			in.Files[f.shownPath(p)] = sum
		}
	}
	return nil
}

func (f *Fingerprinter) shownPath(p string) string {
	best := ""
	for dir := range f.ModuleDirs {
		if r, err := filepath.Rel(dir, p); err == nil && !strings.HasPrefix(r, "..") && len(dir) > len(best) {
			best = dir
		}
	}
	if best != "" {
		r, _ := filepath.Rel(best, p)
		return f.ModuleDirs[best] + filepath.ToSlash(r)
	}
	if f.Workspace != "" {
		if r, err := filepath.Rel(f.Workspace, p); err == nil && !strings.HasPrefix(r, "..") {
			return filepath.ToSlash(r)
		}
	}
	return p
}

// lookup resolves a lookup once per distinct call and context.
func (f *Fingerprinter) lookup(ctx context.Context, o *value.Object, build *value.Map) (string, error) {
	def := f.Registry.Lookups[o.Kind]
	key := value.Format(o)
	for _, kw := range def.Context {
		if v, ok := build.Get(kw); ok {
			key += "\x00" + kw + "=" + value.Format(v)
		}
	}
	f.mu.Lock()
	if f.lookups == nil {
		f.lookups = map[string]*lookupResult{}
	}
	r, ok := f.lookups[key]
	if !ok {
		r = &lookupResult{}
		f.lookups[key] = r
	}
	f.mu.Unlock()
	r.once.Do(func() {
		cfg := def.Schema.New()
		if _, err := def.Schema.Decode(&o.Fields, cfg, schema.Options{}); err != nil {
			r.err = err
			return
		}
		r.found, r.err = def.Resolve(ctx, cfg, build)
	})
	return r.found, r.err
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
