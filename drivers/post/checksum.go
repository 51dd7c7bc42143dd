package post

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"io"
	"sort"
	"strings"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// hashes are the supported checksum types.
var hashes = map[string]func() hash.Hash{
	"md5":    md5.New,
	"sha1":   sha1.New,
	"sha256": sha256.New,
	"sha512": sha512.New,
}

func supported() string {
	names := make([]string, 0, len(hashes))
	for n := range hashes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// ChecksumConfig is checksum()'s configuration.
type ChecksumConfig struct {
	ChecksumTypes []string `kw:"checksum_types" default:"[\"sha256\"]" doc:"Which checksums to write: md5, sha1, sha256, sha512."`
	Output        string   `kw:"output" default:"{build}.{type}sum" path:"output" pathvars:"type=checksum_types" doc:"The checksum file, relative to the workspace; {build}, {driver} and {type} are replaced. One this build wrote before is replaced; a file imgbuild did not make is refused."`
}

// Validate implements schema.Validator.
func (c *ChecksumConfig) Validate(deferred schema.Deferred) error {
	if len(c.ChecksumTypes) == 0 {
		return schema.Errorf("checksum_types", "is empty: name at least one of %s", supported())
	}
	seen := map[string]bool{}
	for _, t := range c.ChecksumTypes {
		if _, ok := hashes[t]; !ok {
			return schema.Errorf("checksum_types", "unknown checksum type %q (supported: %s)", t, supported())
		}
		if seen[t] {
			return schema.Errorf("checksum_types", "%q is listed twice", t)
		}
		seen[t] = true
	}
	if deferred.Has("output") {
		return nil
	}
	if c.Output == "" {
		return schema.Errorf("output", "is empty: name the checksum file, such as \"{build}.{type}sum\"")
	}
	if len(c.ChecksumTypes) > 1 && !strings.Contains(c.Output, "{type}") {
		return schema.Errorf("output", "%q must contain {type} when several checksum_types are given, or each file would overwrite the last", c.Output)
	}
	return nil
}

// ChecksumDef returns checksum()'s declaration.
func ChecksumDef() *engine.PostProcessorDef {
	return &engine.PostProcessorDef{
		Schema: schema.Of("checksum",
			"Writes checksum files for the artifact's files, one line \"<sum>  <file>\" each, as sha256sum -c reads them from the workspace; the checksum files join the artifact.",
			&ChecksumConfig{}),
		New: engine.Typed("checksum", func(cfg *ChecksumConfig) engine.PostProcessor { return &Checksum{cfg: cfg} }),
	}
}

// Checksum is the checksum() post-processor. The artifact it returns has
// the checksum files added to Files and, for each type, Fields[type] (a map
// of file → sum) and Fields[type+"_file"] (the checksum file).
type Checksum struct {
	cfg *ChecksumConfig
}

// PostProcess implements engine.PostProcessor.
func (c *Checksum) PostProcess(ctx context.Context, env *engine.PostEnv, in *engine.Artifact) (*engine.Artifact, error) {
	redact := env.Redact
	if redact == nil {
		redact = func(s string) string { return s }
	}
	out := *in
	out.Files = append([]string(nil), in.Files...)
	out.Fields = map[string]any{}
	for k, v := range in.Fields {
		out.Fields[k] = v
	}
	sums := make([]map[string]string, len(c.cfg.ChecksumTypes))
	for i := range sums {
		sums[i] = map[string]string{}
	}
	// One read of each file feeds every hash.
	var summed, skipped []string
	for _, f := range in.Files {
		hs := make([]hash.Hash, len(c.cfg.ChecksumTypes))
		ws := make([]io.Writer, len(hs))
		for i, t := range c.cfg.ChecksumTypes {
			hs[i] = hashes[t]()
			ws[i] = hs[i]
		}
		_, skip, err := hashArtifactFile(ctx, env, f, io.MultiWriter(ws...))
		if err != nil {
			return nil, err // it names f
		}
		if skip != "" {
			skipped = append(skipped, f+" ("+skip+")")
			continue
		}
		summed = append(summed, f)
		for i := range hs {
			sums[i][f] = hex.EncodeToString(hs[i].Sum(nil))
		}
	}
	if len(skipped) > 0 {
		env.UI.Say("checksum: skipped %d file(s) that are not regular files inside the workspace: %s", len(skipped), strings.Join(skipped, ", "))
	}
	outs := env.OutputSet()
	for i, t := range c.cfg.ChecksumTypes {
		name := strings.ReplaceAll(output.Expand(c.cfg.Output, env.Build, env.Driver), "{type}", t)
		var b strings.Builder
		for _, f := range summed {
			b.WriteString(redact(sumLine(sums[i][f], f)))
		}
		if _, err := outs.WriteFile(name, "output", []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
		env.UI.Say("checksum: wrote %s sums of %d file(s) to %s", t, len(summed), name)
		out.Files = append(out.Files, name)
		out.Fields[t] = sums[i]
		out.Fields[t+"_file"] = name
	}
	return &out, nil
}

// sumLine is one line of a checksum file in the format of GNU sha256sum:
// a name holding a newline or backslash is escaped and the line starts
// with a backslash.
func sumLine(sum, name string) string {
	if strings.ContainsAny(name, "\\\n\r") {
		esc := strings.NewReplacer("\\", "\\\\", "\n", "\\n", "\r", "\\r").Replace(name)
		return "\\" + sum + "  " + esc + "\n"
	}
	return sum + "  " + name + "\n"
}
