package render

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/output"
)

// logStamp is the time that starts every line of a log file.
const logStamp = "2006-01-02T15:04:05.000Z07:00"

// RunLog is the name of the file holding a run's own events.
const RunLog = "run.log"

// LogDir is the directory of a run's log files under a workspace:
// workspace/.imgbuild/logs/runID.
func LogDir(workspace, runID string) string {
	return filepath.Join(workspace, ".imgbuild", "logs", runID)
}

// Logs writes every event of each build to dir/<build>.log and the run's
// own events to dir/run.log, one line each:
//
//	2026-01-02T15:04:05.123Z ==> provision: shell
//	2026-01-02T15:04:05.456Z | Reading package lists...
//	2026-01-02T15:04:05.789Z ! debconf: unable to initialize frontend
//
// ("|" before a command's standard output, "!" before its standard error),
// without colour. Progress is thinned as on the terminal; everything else a
// build reports is there, including queued, finished steps, its artifact's
// files and full errors. run.log also gets each build's start and end, with
// the build's name, as an index.
//
// The directory and the files are created when first needed. A build's
// file is opened when the build starts and closed when it finishes, so
// that a run of many builds holds as many files open as builds run at once
// (plus run.log): what is said of a build while it is queued waits in
// memory until it starts, and what comes after it finished is appended
// with the file opened and closed again. Close (or RunFinished) closes
// what is still open. A build name is made safe for a file name: characters other than
// ASCII letters, digits, '.', '-' and '_' become '_', a leading '.' is
// replaced, and names that then collide (or a build called "run") get a
// suffix, "-2", "-3"...; Path says which file a build got.
type Logs struct {
	mu       sync.Mutex
	dir      string
	d        *describer
	files    map[string]*os.File // build ("" for the run) → open file
	paths    map[string]string   // build ("" for the run) → file name in dir
	taken    map[string]bool     // file names given out
	waiting  map[string]string   // build → its lines while it is queued
	finished map[string]bool     // builds that finished
	err      error
}

// NewLogs returns a Logs writing into dir, which it creates when needed.
func NewLogs(dir string) *Logs {
	return &Logs{
		dir:      dir,
		d:        newDescriber(true),
		files:    map[string]*os.File{},
		paths:    map[string]string{"": RunLog},
		taken:    map[string]bool{RunLog: true},
		waiting:  map[string]string{},
		finished: map[string]bool{},
	}
}

// Path returns the file the named build's log goes to ("" for run.log),
// whether or not it has been written yet.
func (l *Logs) Path(build string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return filepath.Join(l.dir, l.fileName(build))
}

// Handle implements event.Sink.
func (l *Logs) Handle(e event.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.d.describe(e)
	stamp := e.Time.Format(logStamp)
	var b strings.Builder
	for _, ln := range lines {
		b.WriteString(stamp)
		b.WriteString(logSep(ln.kind))
		b.WriteString(clean(ln.text))
		b.WriteByte('\n')
	}
	switch {
	case e.Type == event.BuildQueued && e.Build != "" && l.files[e.Build] == nil:
		l.waiting[e.Build] += b.String()
	case e.Build != "" && (e.Type == event.BuildFinished || l.finished[e.Build]):
		l.write(e.Build, b.String())
		l.finished[e.Build] = true
		l.closeFile(e.Build)
	default:
		l.write(e.Build, b.String())
	}
	if e.Build != "" && (e.Type == event.BuildStarted || e.Type == event.BuildFinished) {
		// The run's index: "<time> web | build succeeded in 1.2s: id".
		var r strings.Builder
		for _, ln := range lines {
			fmt.Fprintf(&r, "%s %s | %s\n", stamp, clean(e.Build), clean(ln.text))
		}
		l.write("", r.String())
	}
	if e.Type == event.RunFinished {
		l.closeAll()
	}
}

// logSep separates a log line's time from its text.
func logSep(k kind) string {
	switch k {
	case kStdout:
		return " | "
	case kStderr:
		return " ! "
	}
	return " "
}

// write appends text to the build's file, opening it if needed (with the
// lines that waited while the build was queued).
func (l *Logs) write(build, text string) {
	f, ok := l.files[build]
	if !ok {
		if text == "" && l.waiting[build] == "" {
			return
		}
		var err error
		if err = os.MkdirAll(l.dir, 0o755); err == nil {
			f, err = os.OpenFile(filepath.Join(l.dir, l.fileName(build)), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		}
		if err != nil {
			l.fail(err)
			return
		}
		l.files[build] = f
		text = l.waiting[build] + text
		delete(l.waiting, build)
	}
	if text == "" {
		return
	}
	if _, err := f.WriteString(text); err != nil {
		l.fail(err)
	}
}

// closeFile closes a build's file, if open.
func (l *Logs) closeFile(build string) {
	if f, ok := l.files[build]; ok {
		if err := f.Close(); err != nil {
			l.fail(err)
		}
		delete(l.files, build)
	}
}

// fileName returns the build's file name in dir, giving it one if needed.
func (l *Logs) fileName(build string) string {
	if p, ok := l.paths[build]; ok {
		return p
	}
	base := output.SafeName(build, 100)
	name := base + ".log"
	for i := 2; l.taken[name]; i++ {
		name = fmt.Sprintf("%s-%d.log", base, i)
	}
	l.taken[name] = true
	l.paths[build] = name
	return name
}

// fail keeps the first error, which Close reports.
func (l *Logs) fail(err error) {
	if l.err == nil {
		l.err = err
	}
}

// closeAll closes every open file, writing first the lines of builds
// still waiting (never started); later events reopen them, appending.
func (l *Logs) closeAll() {
	for build := range l.waiting {
		l.write(build, "")
	}
	for k := range l.files {
		l.closeFile(k)
	}
}

// Close closes the files and reports the first error creating, writing or
// closing one.
func (l *Logs) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeAll()
	return l.err
}
