package output

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAnOutputIsInPlaceOnlyWhenComplete(t *testing.T) {
	ws := t.TempDir()
	d, err := New(ws, "", "web")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Check("output_directory", false, "web.qcow2"); err != nil {
		t.Fatal(err)
	}
	tmp, err := d.Begin("web.qcow2")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(tmp, []byte("disk"), 0o644)
	if _, err := os.Stat(d.File("web.qcow2")); err == nil {
		t.Error("in place before Done")
	}
	if got := strings.Join(d.Leftovers(), " "); got != "file output/web/web.qcow2.partial" {
		t.Errorf("leftovers while writing: %s", got)
	}
	final, err := d.Done("web.qcow2")
	if err != nil || final != filepath.Join(ws, "output/web/web.qcow2") {
		t.Fatal(final, err)
	}
	if got := strings.Join(d.Files(), " "); got != "output/web/web.qcow2" {
		t.Errorf("files: %s", got)
	}
	// A second build would refuse.
	d2, _ := New(ws, "", "web")
	err = d2.Check("output_directory", false, "web.qcow2", "vmlinuz")
	if err == nil || err.Error() != "output/web/web.qcow2 already exists: remove it, choose another output_directory, or set force = True to replace it" {
		t.Errorf("existing: %v", err)
	}
	if err := d2.Check("output_directory", true, "web.qcow2"); err != nil {
		t.Errorf("with force: %v", err)
	}
	// A failed build removes what it made, and the directory it made.
	if err := d.Cleanup(true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(ws, "output/web")); err == nil {
		t.Error("the directory the build made is still there")
	}
}

func TestTheOutputDirectoryMayNotHoldTheWorkspace(t *testing.T) {
	ws := t.TempDir()
	d, _ := New(ws, filepath.Dir(ws), "web")
	err := d.Check("output_directory", true)
	if err == nil || !strings.Contains(err.Error(), "would hold the workspace") {
		t.Errorf("got %v", err)
	}
	os.WriteFile(filepath.Join(ws, "file"), nil, 0o644)
	d, _ = New(ws, "file", "web")
	if err := d.Check("output_directory", false); err == nil || !strings.Contains(err.Error(), "exists and is not a directory") {
		t.Errorf("a file: %v", err)
	}
}
