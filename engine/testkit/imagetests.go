package testkit

import (
	"slices"
	"testing"

	"github.com/imgbuild/imgbuild/engine/event"
)

// FailedTest checks the events of a run whose image tests were two, the
// first failing after it printed line and the second passing: two
// TestFinished events of those statuses, and no step of build named in
// publishing started (a failed test publishes nothing).
func (r *Recorder) FailedTest(t testing.TB, build, line string, publishing ...string) {
	t.Helper()
	finished := r.Of(event.TestFinished)
	if len(finished) != 2 || finished[0].Status != event.Failed || !slices.Contains(finished[0].Items, line) || finished[1].Status != event.Passed {
		t.Errorf("test events %+v", finished)
	}
	if steps := r.Steps(build); slices.ContainsFunc(steps, func(s string) bool { return slices.Contains(publishing, s) }) {
		t.Errorf("a publishing step ran: %v", steps)
	}
}
