package post

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"time"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/imgbuild/imgbuild/engine"
)

// noAssertion is SPDX's "this document says nothing about it".
const noAssertion = "NOASSERTION"

// imageID is the SPDX identifier of the image's own package.
const imageID common.ElementID = "Image"

// SBOM is the SPDX 2.3 document of one image: a package for the image
// (named after the build, its version the artifact's id, its comment what
// it was built from) that CONTAINS one package for each package the build
// listed in it, each with its package URL. created is the document's
// creation time.
func SBOM(build, driver string, art *engine.Artifact, r *engine.Report, created time.Time) *spdx.Document {
	image := &spdx.Package{
		PackageName:             build,
		PackageSPDXIdentifier:   imageID,
		PackageVersion:          art.ID,
		PackageDownloadLocation: noAssertion,
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  noAssertion,
		PackageCopyrightText:    noAssertion,
		PrimaryPackagePurpose:   "OPERATING-SYSTEM",
		PackageComment:          builtFrom(driver, r),
	}
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      build,
		DocumentNamespace: "https://spdx.org/spdxdocs/imgbuild-" + url.PathEscape(build) + "-" + newUUID(),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: "imgbuild"}},
			Created:  created.UTC().Format(time.RFC3339),
		},
		Packages: []*spdx.Package{image},
		Relationships: []*spdx.Relationship{{
			RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", string(imageID)), Relationship: common.TypeRelationshipDescribe,
		}},
	}
	for i, p := range r.Packages {
		id := common.ElementID(fmt.Sprintf("Package-%d-%s", i+1, spdxIDPart(p.Name)))
		doc.Packages = append(doc.Packages, &spdx.Package{
			PackageName:             p.Name,
			PackageSPDXIdentifier:   id,
			PackageVersion:          p.Version,
			PackageDownloadLocation: noAssertion,
			PackageLicenseConcluded: noAssertion,
			PackageLicenseDeclared:  noAssertion,
			PackageCopyrightText:    noAssertion,
			PackageExternalReferences: []*spdx.PackageExternalReference{{
				Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL,
				Locator: PackageURL(r.PackageManager, r.Distro, r.DistroVersion, p),
			}},
		})
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", string(imageID)), RefB: common.MakeDocElementID("", string(id)), Relationship: common.TypeRelationshipContains,
		})
	}
	return doc
}

// builtFrom says what the image was built from, for the image package's
// comment.
func builtFrom(driver string, r *engine.Report) string {
	parts := []string{"built by imgbuild's " + driver + "()"}
	if r.Fingerprint != "" {
		parts = append(parts, "input fingerprint "+r.Fingerprint)
	}
	for _, u := range r.Upstream {
		parts = append(parts, fmt.Sprintf("from build %s (%s) artifact %s", u.Build, u.Driver, u.ID))
	}
	switch r.PackageManager {
	case engine.NoPackageManager:
		parts = append(parts, "no package manager was found in the image, so no package is listed")
	case "":
	default:
		parts = append(parts, "packages listed with "+r.PackageManager)
	}
	return strings.Join(parts, "; ")
}

// EncodeSBOM is doc as indented SPDX JSON.
func EncodeSBOM(doc *spdx.Document) ([]byte, error) {
	var buf bytes.Buffer
	if err := spdxjson.Write(doc, &buf, spdxjson.Indent("  ")); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// PackageURL is p's package URL (purl): pkg:deb/debian/NAME@VERSION?arch=
// for dpkg, pkg:rpm/fedora/NAME@VERSION-RELEASE?arch=&epoch= for rpm,
// with distro=ID-VERSION_ID when the machine's /etc/os-release gave them.
// The namespace is the distribution's ID, or "debian" (dpkg) and
// "unknown" (rpm) when the machine did not say.
func PackageURL(manager, distro, distroVersion string, p engine.Package) string {
	typ, ns := "deb", distro
	if manager == "rpm" {
		typ = "rpm"
	}
	if ns == "" {
		ns = map[string]string{"deb": "debian", "rpm": "unknown"}[typ]
	}
	s := "pkg:" + typ + "/" + purlEscape(strings.ToLower(ns)) + "/" + purlEscape(p.Name) + "@" + purlEscape(p.Version)
	var q []string
	if p.Arch != "" {
		q = append(q, "arch="+purlEscape(p.Arch))
	}
	if distro != "" {
		d := distro
		if distroVersion != "" {
			d += "-" + distroVersion
		}
		q = append(q, "distro="+purlEscape(d))
	}
	if p.Epoch != "" {
		q = append(q, "epoch="+purlEscape(p.Epoch))
	}
	if len(q) > 0 {
		s += "?" + strings.Join(q, "&")
	}
	return s
}

// purlEscape percent-encodes everything but RFC 3986's unreserved
// characters, as the purl specification allows for every component.
func purlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// spdxIDPart is s with what an SPDX identifier may not hold (anything but
// letters, digits, '.' and '-') replaced by '-'.
func spdxIDPart(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, s)
}
