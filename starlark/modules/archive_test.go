package modules

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// entry is one member of a test archive: a file, or (with link) a
// symbolic link.
type entry struct {
	name, content, link string
	mode                int64
}

// tarGz makes a .tar.gz of entries, as a release tarball is.
func tarGz(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.content)), Typeflag: tar.TypeReg}
		if e.mode != 0 {
			hdr.Mode = e.mode
		}
		switch {
		case e.link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, e.link, 0
		case strings.HasSuffix(e.name, "/"):
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.content))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// serve serves archives by path on 127.0.0.1 and counts the downloads.
func serve(t *testing.T, files map[string][]byte) (string, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &hits
}

// TestAURLArchiveIsDownloadedCheckedAndUnpacked: the archive's sha256 is
// checked, its single top directory becomes the module, executable bits
// and links stay; a second resolve downloads nothing.
func TestAURLArchiveIsDownloadedCheckedAndUnpacked(t *testing.T) {
	archive := tarGz(t,
		entry{name: "base-1.0/"},
		entry{name: "base-1.0/imgbuild.mod", content: "module(name = \"base\")\n"},
		entry{name: "base-1.0/base.star", content: "x = 1\n"},
		entry{name: "base-1.0/scripts/setup.sh", content: "#!/bin/sh\n", mode: 0o755},
		entry{name: "base-1.0/latest.star", link: "base.star"},
	)
	url, hits := serve(t, map[string][]byte{"/base-1.0.tar.gz": archive})
	root := workspace(t, fmt.Sprintf("dep(\"base\", url = %q, sha256 = %q)\n", url+"/base-1.0.tar.gz", sha(archive)))
	cache := t.TempDir()
	g := mustResolve(t, root, cache, Options{})
	if got := read(t, g, "base", "base.star"); got != "x = 1\n" {
		t.Errorf("base.star = %q", got)
	}
	if got := read(t, g, "base", "latest.star"); got != "x = 1\n" {
		t.Errorf("the link: %q", got)
	}
	if st, err := os.Stat(filepath.Join(g.Modules["base"].Dir, "scripts/setup.sh")); err != nil || st.Mode()&0o100 == 0 {
		t.Errorf("setup.sh lost its executable bit: %v %v", st, err)
	}
	lock, _ := ReadLock(root)
	if m := lock.Modules[0]; m.URL != url+"/base-1.0.tar.gz" || m.SHA256 != sha(archive) || m.Commit != "" || m.Hash != g.Modules["base"].Hash {
		t.Errorf("lock: %+v", m)
	}
	mustResolve(t, root, cache, Options{Locked: true})
	if hits.Load() != 1 {
		t.Errorf("%d downloads, want 1", hits.Load())
	}
	// Changed on disk: downloaded again.
	testkit.WriteFile(t, filepath.Join(g.Modules["base"].Dir, "base.star"), "x = 'evil'\n")
	g = mustResolve(t, root, cache, Options{Locked: true})
	if got := read(t, g, "base", "base.star"); got != "x = 1\n" || hits.Load() != 2 {
		t.Errorf("base.star = %q after %d downloads", got, hits.Load())
	}
}

func TestAURLArchiveWithAnotherSHA256IsRefused(t *testing.T) {
	archive := tarGz(t, entry{name: "a.star", content: "a = 1\n"})
	url, _ := serve(t, map[string][]byte{"/a.tar.gz": archive})
	wrong := strings.Repeat("0", 64)
	root := workspace(t, fmt.Sprintf("dep(\"a\", url = %q, sha256 = %q)\n", url+"/a.tar.gz", wrong))
	_, err := resolve(t, root, t.TempDir(), Options{})
	wantError(t, err, fmt.Sprintf(`dep "a" (imgbuild.mod:1:4): the archive at %s/a.tar.gz has sha256 %s, but sha256 = %q: if the new archive is the one you want, put its sha256 in imgbuild.mod`, url, sha(archive), wrong))

	root = workspace(t, fmt.Sprintf("dep(\"a\", url = %q, sha256 = %q)\n", url+"/missing.tar.gz", wrong))
	_, err = resolve(t, root, t.TempDir(), Options{})
	wantError(t, err, fmt.Sprintf(`dep "a" (imgbuild.mod:1:4): downloading %s/missing.tar.gz: the server answered 404 Not Found`, url))
}

// TestUnpackRefusesWhatLeadsOutside: no absolute names, no .., no links
// out of the archive.
func TestUnpackRefusesWhatLeadsOutside(t *testing.T) {
	cases := map[string][]entry{
		`the entry "../evil" leads outside the archive`:                                         {{name: "../evil", content: "x"}},
		`the entry "/etc/evil" leads outside the archive`:                                       {{name: "/etc/evil", content: "x"}},
		`link: a symbolic link to the absolute path /etc`:                                       {{name: "link", link: "/etc"}},
		`up/link: a symbolic link to ../../x, outside the archive`:                              {{name: "up/", content: ""}, {name: "up/link", link: "../../x"}},
		`dev: a module archive holds only files, directories and links, not a character device`: nil,
	}
	for want, entries := range cases {
		var archive []byte
		if entries == nil {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			tw.WriteHeader(&tar.Header{Name: "dev", Typeflag: tar.TypeChar, Mode: 0o644})
			tw.Close()
			archive = buf.Bytes()
		} else {
			archive = tarGz(t, entries...)
		}
		file := filepath.Join(t.TempDir(), "a.tar.gz")
		os.WriteFile(file, archive, 0o644)
		outside := t.TempDir()
		err := unpack(file, filepath.Join(outside, "tree"))
		wantError(t, err, want)
		if _, err := os.Stat(filepath.Join(outside, "evil")); err == nil {
			t.Errorf("%s: wrote outside", want)
		}
	}
}
