package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/journal"
)

// cloud is a fixture reaper: what it holds, by entry's "id".
type cloud struct {
	have map[string]bool
	fail bool
}

func (c *cloud) Find(_ context.Context, e journal.Entry) ([]string, error) {
	if c.have[e.Where["id"]] {
		return []string{"instance " + e.Where["id"]}, nil
	}
	return nil, nil
}

func (c *cloud) Remove(_ context.Context, e journal.Entry) error {
	if c.fail {
		return errors.New("throttled")
	}
	delete(c.have, e.Where["id"])
	return nil
}

// deadRun writes the journal of a run that died holding entries of the
// fixture's kind.
func deadRun(t *testing.T, dir string, ids ...string) {
	t.Helper()
	j, err := journal.Begin(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := j.Record(journal.Entry{Build: "web", Kind: "cloud", What: "instances of web", Where: map[string]string{"id": id}}); err != nil {
			t.Fatal(err)
		}
	}
	j.Record(journal.Entry{Build: "old", Kind: "martian", What: "something only a newer imgbuild knows"})
	j.Close(false) // the lock goes, as when the process dies
}

func TestReapListsWithDryRunThenRemovesWhatDeadRunsLeft(t *testing.T) {
	dir := t.TempDir()
	c := &cloud{have: map[string]bool{"i-1": true}}
	reg := engine.NewRegistry()
	reg.AddReaper("cloud", c)
	deadRun(t, dir, "i-1", "i-gone")

	got, err := engine.Reap(context.Background(), reg, dir, engine.ReapOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || strings.Join(got[0].Found, ",") != "instance i-1" || got[0].Removed || len(got[1].Found) != 0 {
		t.Fatalf("dry run: %+v", got)
	}
	if !c.have["i-1"] {
		t.Fatal("a dry run removed something")
	}
	if got[2].Err == nil || !strings.Contains(got[2].Err.Error(), `no reaper knows entries of kind "martian" (written by another version of imgbuild?): remove something only a newer imgbuild knows by hand`) {
		t.Errorf("unknown kind: %v", got[2].Err)
	}

	c.fail = true
	got, _ = engine.Reap(context.Background(), reg, dir, engine.ReapOptions{})
	if got[0].Err == nil || got[0].Err.Error() != "removing instances of web: throttled" {
		t.Errorf("a failed removal: %v", got[0].Err)
	}
	c.fail = false
	got, _ = engine.Reap(context.Background(), reg, dir, engine.ReapOptions{})
	if len(got) != 2 || !got[0].Removed || c.have["i-1"] {
		t.Fatalf("reap: %+v (cloud still has %v)", got, c.have)
	}
	// What is gone is marked done: only the unknown kind is left to look at.
	got, _ = engine.Reap(context.Background(), reg, dir, engine.ReapOptions{})
	if len(got) != 1 || got[0].Entry.Kind != "martian" {
		t.Errorf("after removing: %+v", got)
	}
}

func TestReapLeavesWhatWasKeptUnlessAsked(t *testing.T) {
	dir := t.TempDir()
	c := &cloud{have: map[string]bool{"i-1": true}}
	reg := engine.NewRegistry()
	reg.AddReaper("cloud", c)
	j, _ := journal.Begin(dir, time.Now())
	j.Record(journal.Entry{Build: "web", Kind: "cloud", What: "instances of web", Where: map[string]string{"id": "i-1"}})
	j.KeepBuild("web")
	j.Close(true)

	got, _ := engine.Reap(context.Background(), reg, dir, engine.ReapOptions{})
	if len(got) != 1 || !got[0].Kept || !c.have["i-1"] {
		t.Fatalf("the next run touched what was kept: %+v", got)
	}
	got, _ = engine.Reap(context.Background(), reg, dir, engine.ReapOptions{Kept: true})
	if len(got) != 1 || !got[0].Removed || c.have["i-1"] {
		t.Fatalf("imgbuild cleanup did not remove what was kept: %+v", got)
	}
}

// TestReapRemovesEveryEntryOfARun removes several entries of one dead run
// in a row: marking one done does not make the next one skipped.
func TestReapRemovesEveryEntryOfARun(t *testing.T) {
	dir := t.TempDir()
	c := &cloud{have: map[string]bool{"i-1": true, "i-2": true, "i-3": true}}
	reg := engine.NewRegistry()
	reg.AddReaper("cloud", c)
	deadRun(t, dir, "i-1", "i-2", "i-3")
	got, err := engine.Reap(context.Background(), reg, dir, engine.ReapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	removed := 0
	for _, r := range got {
		if r.Removed {
			removed++
		}
	}
	if removed != 3 || len(c.have) != 0 {
		t.Errorf("removed %d of 3; left %v", removed, c.have)
	}
}
