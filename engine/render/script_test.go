package render

import (
	"errors"
	"time"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
)

// t0 is when the scripted run starts.
var t0 = time.Date(2026, 3, 1, 14, 5, 9, 0, time.UTC)

// at is t0 plus ms milliseconds.
func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// script is a run of three builds: "base" succeeds with progress and
// output, "web-server" fails in a step with an error, "app" is skipped
// because it needs "web-server".
func script() []event.Event {
	art := &engine.Artifact{Build: "base", Driver: "local", ID: "img-0123", Files: []string{"disk.qcow2", "manifest.json"}}
	return []event.Event{
		{Time: at(0), Type: event.RunStarted, Message: "3 builds, up to 4 at once"},
		{Time: at(1), Type: event.BuildQueued, Build: "base", Driver: "local"},
		{Time: at(1), Type: event.BuildQueued, Build: "web-server", Driver: "local"},
		{Time: at(1), Type: event.BuildQueued, Build: "app", Driver: "local"},
		{Time: at(2), Type: event.BuildStarted, Build: "base", Driver: "local"},
		{Time: at(3), Type: event.BuildStarted, Build: "web-server", Driver: "local"},
		{Time: at(10), Type: event.StepStarted, Build: "base", Driver: "local", Step: "prepare"},
		{Time: at(11), Type: event.Message, Build: "base", Driver: "local", Step: "prepare", Message: "scratch directory ready"},
		{Time: at(20), Type: event.StepFinished, Build: "base", Driver: "local", Step: "prepare", Elapsed: 10 * time.Millisecond},
		{Time: at(21), Type: event.StepStarted, Build: "web-server", Driver: "local", Step: "provision: shell"},
		{Time: at(22), Type: event.Output, Build: "web-server", Driver: "local", Step: "provision: shell", Stream: "stdout", Message: "Reading package lists..."},
		{Time: at(23), Type: event.Output, Build: "web-server", Driver: "local", Step: "provision: shell", Stream: "stderr", Message: "E: Unable to locate package nginxx"},
		{Time: at(30), Type: event.StepStarted, Build: "base", Driver: "local", Step: "upload disk"},
		{Time: at(31), Type: event.Progress, Build: "base", Step: "upload disk", Message: "disk.qcow2", Done: 0, Total: 1 << 30, Unit: "bytes"},
		{Time: at(32), Type: event.Progress, Build: "base", Step: "upload disk", Message: "disk.qcow2", Done: 50 << 20, Total: 1 << 30, Unit: "bytes"},
		{Time: at(33), Type: event.Progress, Build: "base", Step: "upload disk", Message: "disk.qcow2", Done: 100 << 20, Total: 1 << 30, Unit: "bytes"},
		{Time: at(34), Type: event.Progress, Build: "base", Step: "upload disk", Message: "disk.qcow2", Done: 120 << 20, Total: 1 << 30, Unit: "bytes"},
		{Time: at(35), Type: event.Progress, Build: "base", Step: "upload disk", Message: "disk.qcow2", Done: 600 << 20, Total: 1 << 30, Unit: "bytes"},
		{Time: at(36), Type: event.Progress, Build: "base", Step: "upload disk", Message: "disk.qcow2", Done: 610 << 20, Total: 1 << 30, Unit: "bytes"},
		{Time: at(7000), Type: event.Progress, Build: "base", Step: "upload disk", Message: "disk.qcow2", Done: 620 << 20, Total: 1 << 30, Unit: "bytes"},
		{Time: at(7001), Type: event.Progress, Build: "base", Step: "upload disk", Message: "disk.qcow2", Done: 1 << 30, Total: 1 << 30, Unit: "bytes"},
		{Time: at(7002), Type: event.Warning, Build: "base", Driver: "local", Step: "upload disk", Message: "disk is larger than 1 GiB"},
		{Time: at(7003), Type: event.StepFinished, Build: "base", Driver: "local", Step: "upload disk", Elapsed: 6973 * time.Millisecond},
		{Time: at(7100), Type: event.StepFinished, Build: "web-server", Driver: "local", Step: "provision: shell", Elapsed: 7079 * time.Millisecond, Error: "exit status 100"},
		{Time: at(7101), Type: event.CleanupStarted, Build: "web-server", Driver: "local", Step: "prepare"},
		{Time: at(7102), Type: event.CleanupFailed, Build: "web-server", Driver: "local", Step: "prepare", Error: "permission denied", Items: []string{"/tmp/imgbuild-web-server-1"}},
		{Time: at(7200), Type: event.ArtifactMade, Build: "base", Driver: "local", Step: "upload disk", Message: "img-0123", Artifact: art},
		{Time: at(7201), Type: event.BuildFinished, Build: "base", Driver: "local", Status: event.Succeeded, Elapsed: 7199 * time.Millisecond},
		{Time: at(7300), Type: event.BuildFinished, Build: "web-server", Driver: "local", Status: event.Failed, Elapsed: 7297 * time.Millisecond,
			Error: "provision: shell: exit status 100\ncleanup failed: prepare: permission denied; may be left: /tmp/imgbuild-web-server-1"},
		{Time: at(7301), Type: event.BuildFinished, Build: "app", Driver: "local", Status: event.Skipped, Message: `skipped: it needs "web-server", which failed`},
		{Time: at(7400), Type: event.RunFinished, Message: "some builds did not succeed", Elapsed: 7400 * time.Millisecond},
	}
}

// scriptResults are the results of script's run.
func scriptResults() []*engine.Result {
	return []*engine.Result{
		{Build: "base", Driver: "local", Status: event.Succeeded, Elapsed: 7199 * time.Millisecond,
			Artifact: &engine.Artifact{ID: "img-0123", Files: []string{"disk.qcow2", "manifest.json"}}},
		{Build: "web-server", Driver: "local", Status: event.Failed, Elapsed: 7297 * time.Millisecond,
			Err: errors.New("provision: shell: exit status 100\ncleanup failed: prepare: permission denied")},
		{Build: "app", Driver: "local", Status: event.Skipped, Err: errors.New(`skipped: it needs "web-server", which failed`)},
	}
}

// play sends events to a sink.
func play(s event.Sink, events []event.Event) {
	for _, e := range events {
		s.Handle(e)
	}
}
