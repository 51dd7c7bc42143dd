package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// Workspace writes files (slash-separated path → content) into a new
// temporary directory, removed when the test ends, and returns it.
func Workspace(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		WriteFile(t, filepath.Join(dir, filepath.FromSlash(name)), content)
	}
	return dir
}

// WriteFile writes content to path (mode 0644), making its directories;
// an error fails the test.
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
