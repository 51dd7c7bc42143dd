package vagrant

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// CatalogName is vagrant_catalog()'s name in descriptions.
const CatalogName = "vagrant_catalog"

// CatalogConfig is vagrant_catalog()'s configuration.
type CatalogConfig struct {
	Output             string `kw:"output" default:"output/{build}/catalog.json" path:"output-shared" doc:"The catalog file, relative to the workspace; builds sharing it add their providers, and each run its version. A file that is not a Vagrant catalog is never replaced."`
	BoxName            string `kw:"box_name" doc:"The box's name in the catalog, as vagrant box list shows it (\"acme/web\"); \"\" means the build's name."`
	Version            string `kw:"version,required" doc:"The version these boxes are (\"1.2.0\"): vagrant box outdated and update compare versions."`
	Description        string `kw:"description" doc:"The box's description."`
	VersionDescription string `kw:"version_description" doc:"What changed in this version."`
	URL                string `kw:"url" doc:"Where each box is downloaded from: a URL in which {name}, {version}, {provider} and {file} (the box's file name) are replaced, such as \"https://boxes.example.com/{name}/{version}/{file}\"; \"\" means each box's file:// URL on this machine."`
}

var (
	boxVersion = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)
	boxName    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$`)
)

// Validate implements schema.Validator.
func (c *CatalogConfig) Validate(deferred schema.Deferred) error {
	if !deferred.Has("version") && !boxVersion.MatchString(c.Version) {
		return schema.Errorf("version", "%q is not a box version: numbers joined by dots, such as \"1.2.0\"", c.Version)
	}
	if c.BoxName != "" && !deferred.Has("box_name") && !boxName.MatchString(c.BoxName) {
		return schema.Errorf("box_name", "%q is not a box name: a name or owner/name, such as \"acme/web\"", c.BoxName)
	}
	if c.URL != "" && !deferred.Has("url") {
		u, err := url.Parse(strings.NewReplacer("{name}", "n", "{version}", "1", "{provider}", "p", "{file}", "f").Replace(c.URL))
		if err != nil || u.Scheme == "" || (u.Host == "" && u.Scheme != "file") {
			return schema.Errorf("url", "%q is not a URL (such as \"https://boxes.example.com/{name}/{version}/{file}\")", c.URL)
		}
	}
	return nil
}

// CatalogDef declares vagrant_catalog().
func CatalogDef() *engine.PostProcessorDef {
	return &engine.PostProcessorDef{
		Schema: schema.Of(CatalogName,
			"Writes the versioned Vagrant catalog (metadata.json format: name, versions, providers with URLs and SHA-256 checksums) of the boxes the build's vagrant_box() calls made, which vagrant box add reads; a later version, or another build's providers, join the catalog.",
			&CatalogConfig{}),
		Outputs: []engine.Output{{Name: "catalog", Doc: "The catalog file, relative to the workspace."}},
		New:     engine.Typed("vagrant_catalog", func(cfg *CatalogConfig) engine.PostProcessor { return &Catalog{cfg: cfg} }),
	}
}

// Catalog is the vagrant_catalog() post-processor.
type Catalog struct {
	cfg *CatalogConfig
}

// CatalogData is a Vagrant box catalog: the metadata.json a box's URL
// may point vagrant box add at.
type CatalogData struct {
	Name        string           `json:"name"`
	Description string           `json:"description,omitempty"`
	Versions    []CatalogVersion `json:"versions"`
}

// CatalogVersion is one version of the box.
type CatalogVersion struct {
	Version     string            `json:"version"`
	Description string            `json:"description,omitempty"`
	Providers   []CatalogProvider `json:"providers"`
}

// CatalogProvider is one provider's box of a version.
type CatalogProvider struct {
	Name         string `json:"name"`
	URL          string `json:"url"`
	ChecksumType string `json:"checksum_type,omitempty"`
	Checksum     string `json:"checksum,omitempty"`
}

// PostProcess implements engine.PostProcessor.
func (c *Catalog) PostProcess(ctx context.Context, env *engine.PostEnv, in *engine.Artifact) (*engine.Artifact, error) {
	boxes, _ := in.Fields["boxes"].(map[string]string)
	sums, _ := in.Fields["box_checksums"].(map[string]string)
	if len(boxes) == 0 {
		return nil, fmt.Errorf("build %q (%s) made no Vagrant box before vagrant_catalog(): put vagrant_box(provider = ...) before it in post", in.Build, in.Driver)
	}
	name := c.cfg.BoxName
	if name == "" {
		name = env.Build
	}
	outs := env.OutputSet()
	var providers []CatalogProvider
	for _, p := range slices.Sorted(maps.Keys(boxes)) {
		u, err := c.url(name, p, outs.Abs(boxes[p]))
		if err != nil {
			return nil, err
		}
		providers = append(providers, CatalogProvider{Name: p, URL: u, ChecksumType: "sha256", Checksum: strings.TrimPrefix(sums[p], "sha256:")})
	}
	rel := output.Expand(c.cfg.Output, env.Build, env.Driver)
	err := env.UpdateShared(ctx, rel, "output", func(old []byte) ([]byte, error) {
		cat, err := ParseCatalog(old)
		if err != nil {
			return nil, fmt.Errorf("%s %w", rel, err)
		}
		if cat.Name != "" && cat.Name != name {
			return nil, fmt.Errorf("%s is the catalog of the box %q, not %q: choose another output, or box_name = %q", rel, cat.Name, name, cat.Name)
		}
		cat.Name = name
		if c.cfg.Description != "" {
			cat.Description = c.cfg.Description
		}
		cat.add(c.cfg.Version, c.cfg.VersionDescription, providers)
		data, err := json.MarshalIndent(cat, "", "  ")
		if err != nil {
			return nil, err
		}
		return append(data, '\n'), nil
	})
	if err != nil {
		return nil, err
	}
	env.UI.Say("vagrant_catalog: %s lists %s version %s for %d provider(s)", rel, name, c.cfg.Version, len(providers))
	out := *in
	out.Files = append(slices.Clone(in.Files), rel)
	out.Fields = map[string]any{}
	for k, v := range in.Fields {
		out.Fields[k] = v
	}
	out.Fields["catalog"] = rel
	return &out, nil
}

// url is where the catalog says the provider's box at abs is.
func (c *Catalog) url(name, provider, abs string) (string, error) {
	if c.cfg.URL == "" {
		return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String(), nil
	}
	return strings.NewReplacer("{name}", name, "{version}", c.cfg.Version, "{provider}", provider, "{file}", url.PathEscape(path.Base(filepath.ToSlash(abs)))).Replace(c.cfg.URL), nil
}

// add puts providers into version v (made if missing, kept in version
// order), replacing those of the same names.
func (cat *CatalogData) add(v, description string, providers []CatalogProvider) {
	i := slices.IndexFunc(cat.Versions, func(x CatalogVersion) bool { return x.Version == v })
	if i < 0 {
		cat.Versions = append(cat.Versions, CatalogVersion{Version: v})
		i = len(cat.Versions) - 1
	}
	ver := &cat.Versions[i]
	if description != "" {
		ver.Description = description
	}
	for _, p := range providers {
		j := slices.IndexFunc(ver.Providers, func(x CatalogProvider) bool { return x.Name == p.Name })
		if j < 0 {
			ver.Providers = append(ver.Providers, p)
		} else {
			ver.Providers[j] = p
		}
	}
	slices.SortStableFunc(cat.Versions, func(a, b CatalogVersion) int { return compareVersions(a.Version, b.Version) })
}

// compareVersions orders box versions by their numbers.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return strings.Compare(a, b)
}

// ParseCatalog reads a catalog's content (nil for a file not there yet:
// an empty catalog). What is not a Vagrant catalog (an object with a name
// and a versions list, each version with a version and providers, each
// provider with a name and a URL) is an error: such a file is not
// replaced.
func ParseCatalog(data []byte) (*CatalogData, error) {
	if data == nil {
		return &CatalogData{Versions: []CatalogVersion{}}, nil
	}
	why := func(format string, args ...any) error {
		return fmt.Errorf("exists and is not a Vagrant catalog (%s): move it away or choose another output", fmt.Sprintf(format, args...))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cat CatalogData
	if err := dec.Decode(&cat); err != nil {
		return nil, why("%v", err)
	}
	if dec.More() {
		return nil, why("more than one JSON value")
	}
	if cat.Name == "" {
		return nil, why("it names no box")
	}
	seen := map[string]bool{}
	for i, v := range cat.Versions {
		if !boxVersion.MatchString(v.Version) {
			return nil, why("version %d is %q, not a box version", i, v.Version)
		}
		if seen[v.Version] {
			return nil, why("version %s is listed twice", v.Version)
		}
		seen[v.Version] = true
		for j, p := range v.Providers {
			if p.Name == "" || p.URL == "" {
				return nil, why("provider %d of version %s has no name or URL", j, v.Version)
			}
		}
	}
	if cat.Versions == nil {
		cat.Versions = []CatalogVersion{}
	}
	return &cat, nil
}
