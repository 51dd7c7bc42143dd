package output

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// build writes one file into the build's output directory, the way qemu()
// and rootfs() do, and ends it.
func build(t *testing.T, ws, name, content string, failed bool) (*Dir, error) {
	t.Helper()
	d, _ := newDir(ws, "", name)
	if err := d.Check("output_directory", false, name+".qcow2"); err != nil {
		return d, err
	}
	tmp, err := d.Begin(name + ".qcow2")
	if err != nil {
		return d, err
	}
	os.WriteFile(tmp, []byte(content), 0o644)
	if _, err := d.Done(name + ".qcow2"); err != nil {
		return d, err
	}
	return d, d.Cleanup(failed)
}

// newDir is the output directory dir of a build in a fresh Set.
func newDir(ws, dir, build string) (*Dir, error) {
	return NewSet(ws, build, false).Dir(dir, "output_directory"), nil
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(b)
}

func TestAnOutputIsInPlaceOnlyWhenComplete(t *testing.T) {
	ws := t.TempDir()
	d, _ := newDir(ws, "", "web")
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
	if got := strings.Join(d.Leftovers(), " "); !strings.HasPrefix(got, "file output/web/.web.qcow2.imgbuild-new-") || !strings.HasSuffix(got, " output directory output/web") {
		t.Errorf("leftovers while writing: %s", got)
	}
	final, err := d.Done("web.qcow2")
	if err != nil || final != filepath.Join(ws, "output/web/web.qcow2") {
		t.Fatal(final, err)
	}
	if got := strings.Join(d.Files(), " "); got != "output/web/web.qcow2" {
		t.Errorf("files: %s", got)
	}
	// A failed build removes what it made, and the directory it made.
	if err := d.Cleanup(true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(ws, "output/web")); err == nil {
		t.Error("the directory the build made is still there")
	}
}

func TestABuildReplacesItsOwnEarlierOutputWithoutForce(t *testing.T) {
	ws := t.TempDir()
	if _, err := build(t, ws, "web", "first", false); err != nil {
		t.Fatal(err)
	}
	if _, err := build(t, ws, "web", "second", false); err != nil {
		t.Fatalf("the second run: %v", err)
	}
	if got := read(t, filepath.Join(ws, "output/web/web.qcow2")); got != "second" {
		t.Errorf("after the second run: %q", got)
	}
	entries, _ := os.ReadDir(filepath.Join(ws, "output"))
	if len(entries) != 1 {
		t.Errorf("output/ holds %v, want web alone (the replaced directory removed)", entries)
	}
}

func TestAFailedBuildPutsThePreviousOutputBack(t *testing.T) {
	ws := t.TempDir()
	if _, err := build(t, ws, "web", "good", false); err != nil {
		t.Fatal(err)
	}
	if _, err := build(t, ws, "web", "half", true); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(ws, "output/web/web.qcow2")); got != "good" {
		t.Errorf("after a failed run: %q, want the previous run's disk", got)
	}
	// And it is still the build's own: the next run replaces it.
	if _, err := build(t, ws, "web", "third", false); err != nil {
		t.Fatal(err)
	}
}

func TestForeignContentIsRefusedWithItsPathEvenWithForce(t *testing.T) {
	ws := t.TempDir()
	if _, err := build(t, ws, "web", "disk", false); err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(ws, "output/web/notes.txt")
	os.WriteFile(notes, []byte("mine"), 0o644)
	for _, force := range []bool{false, true} {
		d, _ := newDir(ws, "", "web")
		err := d.Check("output_directory", force)
		want := "output/web holds output/web/notes.txt, which imgbuild did not make: move it away or choose another output_directory (force replaces only what imgbuild made)"
		if err == nil || err.Error() != want {
			t.Errorf("force %v: %v\nwant %s", force, err, want)
		}
	}
	if read(t, notes) != "mine" {
		t.Error("the user's file is gone")
	}
}

func TestAFileAUserPutInPlaceOfImgbuildsIsForeign(t *testing.T) {
	ws := t.TempDir()
	if _, err := build(t, ws, "web", "disk", false); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(ws, "output/web/web.qcow2")
	os.Remove(disk)
	os.WriteFile(disk, []byte("the user's own disk"), 0o644)
	d, _ := newDir(ws, "", "web")
	err := d.Check("output_directory", true)
	if err == nil || !strings.Contains(err.Error(), "output/web holds output/web/web.qcow2, which imgbuild did not make") {
		t.Errorf("got %v", err)
	}
}

func TestAnotherBuildsOutputIsReplacedOnlyWithForce(t *testing.T) {
	ws := t.TempDir()
	d, _ := newDir(ws, "out/shared", "web")
	tmp, _ := d.Begin("x")
	os.WriteFile(tmp, nil, 0o644)
	d.Done("x")
	d.Cleanup(false)

	other, _ := newDir(ws, "out/shared", "www")
	err := other.Check("output_directory", false)
	want := `out/shared was made by imgbuild for the build "web": set force = True (or run with --force) to replace it, or choose another output_directory`
	if err == nil || err.Error() != want {
		t.Errorf("without force: %v\nwant %s", err, want)
	}
	if err := other.Check("output_directory", true); err != nil {
		t.Errorf("with force: %v", err)
	}
}

func TestADirectoryThatAppearedDuringTheBuildIsNotReplaced(t *testing.T) {
	ws := t.TempDir()
	d, _ := newDir(ws, "", "web")
	if err := d.Check("output_directory", true); err != nil {
		t.Fatal(err)
	}
	// While the build runs, someone makes the directory.
	os.MkdirAll(filepath.Join(ws, "output/web"), 0o755)
	os.WriteFile(filepath.Join(ws, "output/web/theirs"), []byte("theirs"), 0o644)
	_, err := d.Begin("web.qcow2")
	want := "output/web appeared while the build ran and holds output/web/theirs, which imgbuild did not make: move it away or choose another output_directory (force replaces only what imgbuild made)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if read(t, filepath.Join(ws, "output/web/theirs")) != "theirs" {
		t.Error("their file is gone")
	}
	d.Cleanup(true)
	if entries, _ := os.ReadDir(filepath.Join(ws, "output")); len(entries) != 1 {
		t.Errorf("left in output/: %v", entries)
	}
}

func TestWhatChangesWhileBeingReplacedIsSwappedBack(t *testing.T) {
	ws := t.TempDir()
	if _, err := build(t, ws, "web", "disk", false); err != nil {
		t.Fatal(err)
	}
	late := filepath.Join(ws, "output/web/late.txt")
	testHookBeforeSwap = func(string) { os.WriteFile(late, []byte("late"), 0o644) }
	defer func() { testHookBeforeSwap = nil }()
	_, err := build(t, ws, "web", "new", false)
	if err == nil || !strings.Contains(err.Error(), "output/web appeared while the build ran and holds output/web/late.txt, which imgbuild did not make") {
		t.Errorf("got %v", err)
	}
	if read(t, late) != "late" || read(t, filepath.Join(ws, "output/web/web.qcow2")) != "disk" {
		t.Error("the directory swapped out was not put back as it was")
	}
}

func TestAnEmptyDirectoryIsTaken(t *testing.T) {
	ws := t.TempDir()
	os.MkdirAll(filepath.Join(ws, "output/web"), 0o755)
	if _, err := build(t, ws, "web", "disk", false); err != nil {
		t.Fatal(err)
	}
}

func TestAFileWhereTheDirectoryGoesIsRefused(t *testing.T) {
	ws := t.TempDir()
	os.MkdirAll(filepath.Join(ws, "output"), 0o755)
	os.WriteFile(filepath.Join(ws, "output/web"), []byte("x"), 0o644)
	_, err := build(t, ws, "web", "disk", false)
	if err == nil || err.Error() != "output/web exists and imgbuild did not make it: move it away or choose another output_directory (force replaces only what imgbuild made)" {
		t.Errorf("got %v", err)
	}
}
