package engine_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// TestStateWriterChild is a process of TestConcurrentStateUpdatesLoseNothing:
// it records 300 builds in the state file, one update each.
func TestStateWriterChild(t *testing.T) {
	path := testkit.ChildEnv(t, "STATE_TEST_FILE", "TestConcurrentStateUpdatesLoseNothing")
	who := os.Getenv("STATE_TEST_WRITER")
	for i := range 300 {
		name := fmt.Sprintf("%s-b%d", who, i)
		err := engine.UpdateState(context.Background(), path, func(s *engine.State) {
			s.Builds[name] = &engine.BuildState{Driver: "local", Status: event.Succeeded}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestConcurrentStateUpdatesLoseNothing has three processes record 300
// builds each in one state file at once: all 900 are kept.
func TestConcurrentStateUpdatesLoseNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".imgbuild", "state.json")
	var cmds []*exec.Cmd
	for p := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStateWriterChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "STATE_TEST_FILE="+path, "STATE_TEST_WRITER=p"+strconv.Itoa(p))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("a writer failed: %v", err)
		}
	}
	s, err := engine.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Builds) != 900 {
		t.Errorf("the state records %d of 900 builds", len(s.Builds))
	}
}
