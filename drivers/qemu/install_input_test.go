package qemu_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemutest"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// TestBadInstallInputsAreNamed runs install builds whose ISO, checksum or
// HTTP directory is wrong only when the build runs: each fails before a
// machine starts, with a message saying what is wrong.
func TestBadInstallInputsAreNamed(t *testing.T) {
	qemutest.RequireQEMU(t)
	// A port nothing listens on: taken, then let go.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/debian-12.iso"
	l.Close()
	const isoSum = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b" // sha256 of "1"
	const wrong = "0000000000000000000000000000000000000000000000000000000000000000"
	for _, tc := range []struct {
		name     string
		settings map[string]string
		prepare  func(dir string)
		want     []string
	}{
		{name: "checksum mismatch",
			settings: map[string]string{"iso_checksum": `"sha256:` + wrong + `"`},
			want:     []string{"tiny.iso has sha256 " + isoSum + ", not " + wrong + " as iso_checksum says"}},
		{name: "unreachable URL",
			settings: map[string]string{"iso_url": `"` + closed + `"`, "iso_checksum": `"sha256:` + isoSum + `"`},
			want:     []string{closed, "connection refused"}},
		{name: "checksum list without the ISO",
			settings: map[string]string{"iso_checksum": `"file:SHA256SUMS"`},
			prepare: func(dir string) {
				testkit.WriteFile(t, filepath.Join(dir, "SHA256SUMS"), wrong+"  other.iso\n")
			},
			want: []string{"iso_checksum file:SHA256SUMS lists no checksum for tiny.iso (it lists other.iso)"}},
		{name: "http_directory gone",
			settings: map[string]string{"iso_checksum": `"sha256:` + isoSum + `"`},
			prepare:  func(dir string) { os.RemoveAll(filepath.Join(dir, "www")) },
			want:     []string{"www does not exist or is not a directory: create it, or set http_content instead"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			testkit.WriteFile(t, filepath.Join(dir, "tiny.iso"), "1")
			testkit.WriteFile(t, filepath.Join(dir, "www/ks.cfg"), "")
			testkit.WriteFile(t, filepath.Join(dir, "cd/note.txt"), "")
			testkit.WriteFile(t, filepath.Join(dir, "images.star"), isoQemu(isoSum, tc.settings))
			d := load(t, dir)
			if tc.prepare != nil {
				tc.prepare(dir)
			}
			r := runLoaded(t, context.Background(), d, nil)
			msg := r.Err(t, "tiny")
			testkit.WantIn(t, "the error", msg, tc.want...)
			if strings.Contains(r.Rec.Log(), "qemu started") {
				t.Errorf("a machine started:\n%s", r.Rec.Log())
			}
		})
	}
}
