package testkit_test

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

func TestCopyTreeKeepsModesAndLeavesOutWhatKeepRefuses(t *testing.T) {
	src := testkit.Workspace(t, map[string]string{"a.sh": "#!/bin/sh\n", "lib/b.star": "b = 1\n", "output/web/disk": "x"})
	os.Chmod(filepath.Join(src, "a.sh"), 0o755)
	dst := t.TempDir()
	testkit.CopyTree(t, src, dst, func(rel string, d fs.DirEntry) bool { return rel != "output" })
	rels := func(paths []string) []string {
		for i, p := range paths {
			paths[i], _ = filepath.Rel(dst, p)
		}
		return paths
	}
	if got := rels(testkit.FilesUnder(dst)); !slices.Equal(got, []string{"a.sh", "lib/b.star"}) {
		t.Errorf("copied %q", got)
	}
	if fi, err := os.Stat(filepath.Join(dst, "a.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("a.sh: %v %v", fi, err)
	}
	if got := testkit.FilesUnder(filepath.Join(dst, "missing")); got != nil {
		t.Errorf("FilesUnder of a missing directory: %q", got)
	}
}

func TestReadTarGivesHeadersInOrderAndSmallFilesContent(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "./etc/hostname", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4})
	tw.Write([]byte("web\n"))
	tw.WriteHeader(&tar.Header{Name: "./etc/link", Typeflag: tar.TypeSymlink, Linkname: "hostname"})
	tw.Close()
	p := filepath.Join(t.TempDir(), "a.tar")
	os.WriteFile(p, buf.Bytes(), 0o644)
	var got []string
	for _, e := range testkit.ReadTarFile(t, p) {
		got = append(got, e.Header.Name+"="+e.Data)
	}
	if want := []string{"./etc/=", "./etc/hostname=web\n", "./etc/link="}; !slices.Equal(got, want) {
		t.Errorf("entries %q, want %q", got, want)
	}
}
