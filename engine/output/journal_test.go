package output

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/journal"
)

// entries is a Recorder keeping what is recorded.
type entries struct{ list []journal.Entry }

func (e *entries) Record(kind, what string, where map[string]string) (int, error) {
	e.list = append(e.list, journal.Entry{ID: len(e.list) + 1, Build: "web", Kind: kind, What: what, Where: where})
	return len(e.list), nil
}

// journaledDir returns build web's set in ws, journaled into the entries
// returned, and its checked output directory.
func journaledDir(t *testing.T, ws string) (*Set, *entries, *Dir) {
	t.Helper()
	s := NewSet(ws, "web", false)
	rec := &entries{}
	s.Journal(rec)
	d := s.Dir("", "output_directory")
	if err := d.Check("output_directory", false); err != nil {
		t.Fatal(err)
	}
	return s, rec, d
}

// TestWhatAKilledBuildsOutputsLeftIsUndone plays a build killed while it
// writes its output directory, which replaced the build's earlier one (a
// file in place, another half-written), and a manifest-like file never
// placed: the set recorded itself before writing, and its reaper removes
// what the build made and puts the earlier output back, record and all,
// as a failed build's Finish does. Nothing else in the workspace moves.
func TestWhatAKilledBuildsOutputsLeftIsUndone(t *testing.T) {
	ws := t.TempDir()
	if _, err := build(t, ws, "web", "first", false); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ws, "notes.txt"), []byte("the user's"), 0o644)
	before, _ := ledgerOf(t, ws)

	s, rec, d := journaledDir(t, ws)
	if len(rec.list) != 0 {
		t.Fatal("recorded before writing anything")
	}
	tmp, err := d.Begin("vmlinuz")
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.list) != 1 || rec.list[0].Kind != JournalKind || rec.list[0].Where["set"] == "" {
		t.Fatalf("the set's entry: %+v", rec.list)
	}
	os.WriteFile(tmp, []byte("kernel"), 0o644)
	if _, err := d.Done("vmlinuz"); err != nil {
		t.Fatal(err)
	}
	half, _ := d.Begin("web.qcow2")
	os.WriteFile(half, []byte("half a disk"), 0o644)
	f, err := s.Create("out/sums", "output")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("half"))
	// Killed here: no Cleanup, no Finish.

	e := rec.list[0]
	found, err := Reaper{}.Find(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(found, "\n"); !strings.Contains(got, "output output/web, being placed by the killed build") || !strings.Contains(got, "temporary out/.sums.imgbuild-new-") {
		t.Errorf("found:\n%s", got)
	}
	if err := (Reaper{}).Remove(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(ws, "output/web/web.qcow2")); got != "first" {
		t.Errorf("the earlier output is %q, want it back", got)
	}
	if got := read(t, filepath.Join(ws, "notes.txt")); got != "the user's" {
		t.Errorf("a file the build did not make: %q", got)
	}
	for _, dir := range []string{ws, filepath.Join(ws, "output"), filepath.Join(ws, "output/web"), filepath.Join(ws, "out")} {
		ents, _ := os.ReadDir(dir)
		for _, en := range ents {
			if IsTemporary(en.Name()) || en.Name() == "vmlinuz" {
				t.Errorf("left in %s: %s", dir, en.Name())
			}
		}
	}
	after, _ := ledgerOf(t, ws)
	if after != before {
		t.Errorf("records:\n%s\nwant, as before the build:\n%s", after, before)
	}
	if found, _ := (Reaper{}).Find(context.Background(), e); len(found) != 0 {
		t.Errorf("found after removing: %v", found)
	}
}

// ledgerOf is the workspace's records, one a line.
func ledgerOf(t *testing.T, ws string) (string, error) {
	t.Helper()
	r, err := os.OpenRoot(ws)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	recs, err := ledger{r}.all()
	var lines []string
	for p, rec := range recs {
		lines = append(lines, p+" "+rec.Build+" "+rec.Kind+" "+rec.Set+" "+rec.Aside)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n"), err
}

// TestAFileKilledAsItMovesIntoItsDirectoryIsUndone plays a build killed
// the instant a file has moved into its output directory, before anything
// else: the file was recorded before it moved, so the reaper takes it for
// the build's and removes it with the directory.
func TestAFileKilledAsItMovesIntoItsDirectoryIsUndone(t *testing.T) {
	ws := t.TempDir()
	_, rec, d := journaledDir(t, ws)
	tmp, err := d.Begin("vmlinuz")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(tmp, []byte("kernel"), 0o644)
	half, _ := d.Begin("web.qcow2")
	os.WriteFile(half, []byte("half a disk"), 0o644)
	type killed struct{}
	afterMove = func() { panic(killed{}) }
	t.Cleanup(func() { afterMove = nil })
	func() {
		defer func() {
			if r := recover(); r != (killed{}) {
				t.Fatalf("Done: %v", r)
			}
		}()
		d.Done("vmlinuz")
	}()
	afterMove = nil
	if got := read(t, filepath.Join(ws, "output/web/vmlinuz")); got != "kernel" {
		t.Fatalf("vmlinuz not in place: %q", got)
	}
	// Killed here: no Cleanup, no Finish.
	if err := (Reaper{}).Remove(context.Background(), rec.list[0]); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(ws, "output")); len(ents) != 0 {
		t.Errorf("left in output: %v", ents)
	}
}
