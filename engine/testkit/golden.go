package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// Golden compares got, what a test made (named what in the failure), with
// the golden file at path; with update (a test binary's -update flag) it
// rewrites the file instead.
func Golden(t testing.TB, what, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (-update rewrites it):\n--- got\n%s\n--- want\n%s", what, path, got, want)
	}
}
