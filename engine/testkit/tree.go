package testkit

import (
	"archive/tar"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// CopyTree copies the directory src into dst, keeping modes. keep, when
// not nil, says what to copy (rel is slash-separated below src, "." for
// src itself); a directory it refuses is left out whole.
func CopyTree(t testing.TB, src, dst string, keep func(rel string, d fs.DirEntry) bool) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if keep != nil && !keep(filepath.ToSlash(rel), d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TarEntry is an entry of a tar archive: its header and, for a regular
// file under 1 MiB, its content.
type TarEntry struct {
	Header *tar.Header
	Data   string
}

// ReadTar reads every entry of the tar archive r, in order; an error
// fails the test.
func ReadTar(t testing.TB, r io.Reader) []TarEntry {
	t.Helper()
	var out []TarEntry
	eachTarEntry(t, r, keepTarEntry(&out))
	return out
}

// ReadTarFile is ReadTar of the archive at path.
func ReadTarFile(t testing.TB, path string) []TarEntry {
	t.Helper()
	var out []TarEntry
	TarEntries(t, path, keepTarEntry(&out))
	return out
}

// TarEntries calls each for every entry of the tar file at path, in order,
// with a reader of the entry's whole content; an error opening or reading
// the tar fails the test.
func TarEntries(t testing.TB, path string, each func(h *tar.Header, content io.Reader)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	eachTarEntry(t, f, each)
}

// eachTarEntry calls each for every entry of the tar archive r, in order.
func eachTarEntry(t testing.TB, r io.Reader, each func(h *tar.Header, content io.Reader)) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		each(h, tr)
	}
}

// keepTarEntry returns an each that appends the entry to out, with the
// content of a regular file under 1 MiB.
func keepTarEntry(out *[]TarEntry) func(h *tar.Header, content io.Reader) {
	return func(h *tar.Header, content io.Reader) {
		var data []byte
		if h.Typeflag == tar.TypeReg && h.Size < 1<<20 {
			data, _ = io.ReadAll(content)
		}
		*out = append(*out, TarEntry{Header: h, Data: string(data)})
	}
}

// FilesUnder lists the paths of everything but directories below dir, in
// lexical order; none when dir does not exist.
func FilesUnder(dir string) []string {
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return files
}
