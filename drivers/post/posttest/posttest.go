// Package posttest reads back, for tests, what the post-processors wrote:
// a manifest() file and the SPDX SBOM beside it, each decoded the way a
// user's tools would (encoding/json, the SPDX project's own library).
package posttest

import (
	"encoding/json"
	"os"
	"testing"

	spdxjson "github.com/spdx/tools-golang/json"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/imgbuild/imgbuild/drivers/post"
)

// Manifest returns the builds of the manifest at path; the test stops if
// it cannot be read or decoded.
func Manifest(t testing.TB, path string) []post.ManifestBuild {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Builds []post.ManifestBuild }
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, data)
	}
	return m.Builds
}

// SBOM returns the SPDX 2.3 document at path, read with the SPDX library;
// the test stops if it cannot be.
func SBOM(t testing.TB, path string) *spdx.Document {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var doc spdx.Document
	if err := spdxjson.ReadInto(f, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &doc
}
