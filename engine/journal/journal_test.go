package journal

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary play a run that is killed: with
// JOURNAL_TEST_DIE=dir it begins a journal in dir, records a scratch
// directory, and kills itself with SIGKILL.
func TestMain(m *testing.M) {
	if dir := os.Getenv("JOURNAL_TEST_DIE"); dir != "" {
		j, err := Begin(dir, time.Now())
		if err != nil {
			panic(err)
		}
		scratch := filepath.Join(dir, "..", "imgbuild-web-1234")
		if _, err := j.Record(Entry{Build: "web", Kind: KindDir, What: "scratch directory imgbuild-web-1234", Where: map[string]string{"path": scratch}}); err != nil {
			panic(err)
		}
		os.Mkdir(scratch, 0o755)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	os.Exit(m.Run())
}

func TestRunsStartedInTheSameMillisecondGetDifferentIDs(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 3, 1, 14, 5, 9, 123_000_000, time.UTC)
	seen := map[string]bool{}
	for range 50 {
		j, err := Begin(dir, now)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(j.ID(), "20260301-140509.123-") {
			t.Errorf("id %q does not start with the time", j.ID())
		}
		if seen[j.ID()] {
			t.Fatalf("id %s given twice", j.ID())
		}
		seen[j.ID()] = true
		defer j.Close(true)
	}
}

func TestALiveRunIsNotDeadAndAKilledOneIs(t *testing.T) {
	dir := t.TempDir()
	live, err := Begin(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close(true)
	if _, err := live.Record(Entry{Kind: KindDir, What: "live's", Where: map[string]string{"path": "/nonexistent/imgbuild-x"}}); err != nil {
		t.Fatal(err)
	}
	// A real process that records, then dies by SIGKILL.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "JOURNAL_TEST_DIE="+dir)
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child did not die by SIGKILL: %v", err)
	}
	dead, err := Dead(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 {
		t.Fatalf("%d dead runs, want the killed one only", len(dead))
	}
	d := dead[0]
	if d.ID == live.ID() || d.PID != cmd.Process.Pid {
		t.Errorf("dead run %s (pid %d), want pid %d", d.ID, d.PID, cmd.Process.Pid)
	}
	if len(d.Open) != 1 || d.Open[0].What != "scratch directory imgbuild-web-1234" || d.Open[0].Build != "web" {
		t.Fatalf("open entries: %+v", d.Open)
	}
	// Claimed: a second cleanup does not get it meanwhile.
	if again, _ := Dead(dir); len(again) != 0 {
		t.Error("a claimed run was given to a second cleanup")
	}
	if err := d.Done(d.Open[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := d.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, d.ID+journalExt)); !os.IsNotExist(err) {
		t.Errorf("the journal of a run with nothing left was not removed: %v", err)
	}
}

func TestDoneKeptAndClose(t *testing.T) {
	dir := t.TempDir()
	j, err := Begin(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec := func(build, what string) int {
		id, err := j.Record(Entry{Build: build, Kind: KindDir, What: what, Where: map[string]string{"path": "/x"}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	a := rec("a", "a1")
	rec("a", "a2")
	rec("b", "b1")
	rec("c", "c1")
	rec("", "the run's")
	j.Done(a)
	j.DoneBuild("a")
	j.KeepBuild("b")
	var open []string
	for _, e := range j.Open() {
		open = append(open, e.What)
	}
	if strings.Join(open, ",") != "c1,the run's" {
		t.Errorf("open: %v", open)
	}
	// Ending normally: the run's own entries are done; c1 (a failed
	// cleanup) and b1 (kept) stay for later.
	if err := j.Close(true); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Record(Entry{What: "late"}); err == nil || !strings.Contains(err.Error(), "the run's journal is closed: not creating late") {
		t.Errorf("Record after Close: %v", err)
	}
	dead, err := Dead(dir)
	if err != nil || len(dead) != 1 {
		t.Fatalf("Dead: %v, %d", err, len(dead))
	}
	d := dead[0]
	defer d.Release()
	if len(d.Open) != 1 || d.Open[0].What != "c1" || len(d.Kept) != 1 || d.Kept[0].What != "b1" {
		t.Errorf("open %+v, kept %+v", d.Open, d.Kept)
	}
}

func TestAJournalWithNothingLeftIsRemovedAtClose(t *testing.T) {
	dir := t.TempDir()
	j, _ := Begin(dir, time.Now())
	id, _ := j.Record(Entry{Build: "a", Kind: KindDir, What: "d"})
	j.Done(id)
	if err := j.Close(false); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left in the journal directory: %v", ents)
	}
}

func TestADamagedJournalSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	good := `{"op":"run","pid":1}` + "\n" + `{"op":"create","entry":{"id":1,"kind":"dir","what":"d"}}` + "\n"
	os.WriteFile(filepath.Join(dir, "cut.jsonl"), []byte(good+`{"op":"cre`), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.jsonl"), []byte(`{"op":"run"}`+"\nnot json\n"+good), 0o644)
	_, err := Dead(dir)
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl is damaged at line 2") || !strings.Contains(err.Error(), "remove it once you have removed what it lists by hand") {
		t.Errorf("err = %v", err)
	}
	os.Remove(filepath.Join(dir, "bad.jsonl"))
	dead, err := Dead(dir)
	if err != nil || len(dead) != 1 || len(dead[0].Open) != 1 {
		t.Fatalf("a journal cut short at its last line: %v %+v", err, dead)
	}
	dead[0].Release()
}

func TestTheProcessReaperKillsTheRunsProcessesAndOnlyThose(t *testing.T) {
	marker := EnvVar + "=test-" + filepath.Base(t.TempDir())
	start := func(marked bool, ownGroup bool) *exec.Cmd {
		// A shell with a child of its own, both marked (inherited).
		c := exec.Command("/bin/sh", "-c", "sleep 300 & wait")
		c.Env = os.Environ()
		if marked {
			c.Env = append(c.Env, marker)
		}
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: ownGroup}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		return c
	}
	grouped := start(true, true)
	inOurGroup := start(true, false) // shares the test's process group
	other := start(false, true)
	e := Entry{Kind: KindProcesses, Where: map[string]string{"env": marker}}
	r := processReaper{}
	var found []string
	deadline := time.Now().Add(10 * time.Second)
	for len(found) < 4 && time.Now().Before(deadline) { // until both sleeps have started
		found, _ = r.Find(context.Background(), e)
	}
	if len(found) != 4 {
		t.Fatalf("found %v, want 2 shells and 2 sleeps", found)
	}
	if err := r.Remove(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*exec.Cmd{grouped, inOurGroup} {
		if err := c.Wait(); err == nil {
			t.Errorf("process %d was not killed", c.Process.Pid)
		}
	}
	if left, _ := r.Find(context.Background(), e); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
	if err := syscall.Kill(other.Process.Pid, 0); err != nil {
		t.Errorf("an unmarked process was killed: %v", err)
	}
}

func TestTheDirReaperRemovesOnlyImgbuildDirectories(t *testing.T) {
	base := t.TempDir()
	mine := filepath.Join(base, "imgbuild-web-1a2b")
	os.MkdirAll(filepath.Join(mine, "sub"), 0o755)
	r := dirReaper{}
	if err := r.Remove(context.Background(), Entry{Where: map[string]string{"path": mine}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mine); !os.IsNotExist(err) {
		t.Errorf("not removed: %v", err)
	}
	err := r.Remove(context.Background(), Entry{Where: map[string]string{"path": base}})
	if err == nil || !strings.Contains(err.Error(), "imgbuild's directories are absolute paths named imgbuild-*") {
		t.Errorf("removing %s: %v", base, err)
	}
	if _, err := os.Stat(base); err != nil {
		t.Errorf("a directory not named imgbuild-* was touched: %v", err)
	}
}
