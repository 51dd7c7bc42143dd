package render

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	testkit.Golden(t, "output", filepath.Join("testdata", name), got, *update)
}

func noEscapes(t *testing.T, what, s string) {
	t.Helper()
	if i := strings.IndexByte(s, 0x1b); i >= 0 {
		t.Errorf("%s holds an escape sequence at %d: %q", what, i, s[max(0, i-20):min(len(s), i+20)])
	}
}

func TestPlainPrintsPrefixedLinesForEachBuild(t *testing.T) {
	var b bytes.Buffer
	p := NewPlain(Options{Out: &b, NoColor: true})
	play(p, script())
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	golden(t, "plain.golden", b.String())
}

func TestPlainTimestampsStartEachLine(t *testing.T) {
	var b bytes.Buffer
	play(NewPlain(Options{Out: &b, NoColor: true, Timestamps: true}), script())
	stamp := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d\d\d `)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	for _, l := range lines {
		if !stamp.MatchString(l) {
			t.Errorf("line without a timestamp: %q", l)
		}
	}
	if want := "14:05:09.002 base       | build started (local)"; lines[1] != want {
		t.Errorf("second line = %q, want %q", lines[1], want)
	}
}

func TestPlainWithoutColourWritesNoEscapeSequence(t *testing.T) {
	events := append(script()[:6:6],
		event.Event{Type: event.Output, Build: "base", Stream: "stdout", Message: "\x1b[1;31mcoloured\x1b[0m by the command"},
		event.Event{Type: event.Output, Build: "base", Stream: "stdout", Message: "10%\r50%\r100%\r"},
	)
	var b bytes.Buffer
	play(NewPlain(Options{Out: &b, NoColor: true, Timestamps: true}), events)
	noEscapes(t, "plain output", b.String())
	for _, want := range []string{"base       | coloured by the command\n", "base       | 100%\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestPlainColoursEachBuildPrefixDifferently(t *testing.T) {
	var b bytes.Buffer
	play(NewPlain(Options{Out: &b}), script())
	out := b.String()
	prefix := func(build string) string {
		for _, l := range strings.Split(out, "\n") {
			if ansi.Strip(l) != l && strings.HasPrefix(ansi.Strip(l), build+" ") {
				return l[:strings.Index(l, build)]
			}
		}
		t.Fatalf("no coloured line for %s in:\n%q", build, out)
		return ""
	}
	if a, w := prefix("base"), prefix("web-server"); a == w || a == "" {
		t.Errorf("base and web-server prefixes start alike: %q, %q", a, w)
	}
	plain := new(bytes.Buffer)
	play(NewPlain(Options{Out: plain, NoColor: true}), script())
	if got := ansi.Strip(out); got != plain.String() {
		t.Errorf("colour changes the text:\n%s\nwant\n%s", got, plain.String())
	}
}

func TestPlainPrintsProgressSparingly(t *testing.T) {
	var b bytes.Buffer
	p := NewPlain(Options{Out: &b, NoColor: true})
	p.Handle(event.Event{Type: event.BuildQueued, Build: "x"})
	for i := int64(0); i <= 1000; i++ {
		p.Handle(event.Event{Time: t0.Add(time.Duration(i) * time.Millisecond), Type: event.Progress, Build: "x", Message: "copy", Done: i, Total: 1000, Unit: "bytes"})
	}
	got := strings.Count(b.String(), "\n")
	if got != 11 { // 0%, 10%, 20%, ... 100%
		t.Errorf("1001 progress events printed %d lines, want 11:\n%s", got, b.String())
	}
	// With no total: only every few seconds.
	b.Reset()
	for i := int64(0); i < 100; i++ {
		p.Handle(event.Event{Time: t0.Add(time.Duration(i) * 200 * time.Millisecond), Type: event.Progress, Build: "x", Message: "download", Done: i << 20, Unit: "bytes"})
	}
	if got := strings.Count(b.String(), "\n"); got != 4 { // at 0s, 5s, 10s, 15s
		t.Errorf("20 s of progress without total printed %d lines, want 4:\n%s", got, b.String())
	}
}

func TestJSONWritesOneMarshalledEventPerLine(t *testing.T) {
	var b bytes.Buffer
	j := NewJSON(&b)
	events := script()
	play(j, events)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&b)
	i := 0
	for ; sc.Scan(); i++ {
		want, _ := json.Marshal(events[i])
		if !bytes.Equal(sc.Bytes(), want) {
			t.Errorf("line %d = %s, want %s", i, sc.Bytes(), want)
		}
		var back event.Event
		if err := json.Unmarshal(sc.Bytes(), &back); err != nil {
			t.Fatalf("line %d does not parse: %v", i, err)
		}
		if back.Type != events[i].Type || back.Build != events[i].Build || !back.Time.Equal(events[i].Time) ||
			back.Elapsed != events[i].Elapsed || back.Error != events[i].Error {
			t.Errorf("line %d parses back as %+v, want %+v", i, back, events[i])
		}
	}
	if i != len(events) {
		t.Errorf("%d lines for %d events", i, len(events))
	}
}

func TestJSONKeepsAnEventWhoseArtifactCannotBeEncoded(t *testing.T) {
	var b bytes.Buffer
	NewJSON(&b).Handle(event.Event{Time: t0, Type: event.ArtifactMade, Build: "x", Artifact: map[string]any{"f": func() {}}})
	var back map[string]any
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("%v: %s", err, b.String())
	}
	if back["build"] != "x" || back["artifact"] == nil {
		t.Errorf("got %s", b.String())
	}
}

func TestLogsWriteOneFilePerBuildWithItsLinesOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs", "run-1")
	l := NewLogs(dir)
	play(l, script())
	if len(l.files) != 0 {
		t.Errorf("files still open after RunFinished: %v", l.files)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		noEscapes(t, name, string(b))
		return string(b)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "app.log base.log run.log web-server.log" {
		t.Errorf("files = %s", got)
	}
	base, web, app, run := read("base.log"), read("web-server.log"), read("app.log"), read("run.log")
	golden(t, "base.log.golden", base)
	for _, c := range []struct{ log, has, hasNot string }{
		{base, "disk.qcow2: 100%", "Reading package lists"},
		{base, "  file: manifest.json", "web-server"},
		{web, "2026-03-01T14:05:09.022Z | Reading package lists...\n", "disk.qcow2"},
		{web, "2026-03-01T14:05:09.023Z ! E: Unable to locate package nginxx\n", "scratch directory"},
		{web, "step provision: shell failed after 7.1s: exit status 100", "build succeeded"},
		{web, "  may be left: /tmp/imgbuild-web-server-1", "run started"},
		{app, `build skipped: it needs "web-server", which failed`, "build started"},
		{run, "run started: 3 builds", "Reading package lists"},
		{run, "web-server | build failed after 7.3s", "==>"},
		{run, "run finished in 7.4s", "disk.qcow2:"},
	} {
		if !strings.Contains(c.log, c.has) {
			t.Errorf("log lacks %q:\n%s", c.has, c.log)
		}
		if strings.Contains(c.log, c.hasNot) {
			t.Errorf("log holds %q:\n%s", c.hasNot, c.log)
		}
	}
	for _, log := range []string{base, web, app, run} {
		for _, ln := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
			if _, err := time.Parse(logStamp, strings.SplitN(ln, " ", 2)[0]); err != nil {
				t.Errorf("line without a time: %q", ln)
			}
		}
	}
}

func TestLogsGiveUnsafeAndCollidingNamesTheirOwnFiles(t *testing.T) {
	dir := t.TempDir()
	l := NewLogs(dir)
	for _, b := range []string{"../../etc/passwd", "a b", "a_b", "run", ".hidden", "", "héllo"} {
		l.Handle(event.Event{Time: t0, Type: event.Message, Build: b, Message: "hello from " + b})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"_.._.._etc_passwd.log": "hello from ../../etc/passwd",
		"a_b.log":               "hello from a b",
		"a_b-2.log":             "hello from a_b",
		"run-2.log":             "hello from run",
		"_.hidden.log":          "hello from .hidden",
		"run.log":               "hello from \n",
		"h__llo.log":            "hello from héllo",
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(want) {
		t.Errorf("%d files, want %d: %v", len(entries), len(want), entries)
	}
	for name, has := range want {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if !strings.Contains(string(b), has) {
			t.Errorf("%s = %q, want it to hold %q", name, b, has)
		}
	}
	if got := l.Path("a_b"); got != filepath.Join(dir, "a_b-2.log") {
		t.Errorf("Path(a_b) = %s", got)
	}
	if got := LogDir("/ws", "20260301-140509.000-1a2b3c"); got != "/ws/.imgbuild/logs/20260301-140509.000-1a2b3c" {
		t.Errorf("LogDir = %s", got)
	}
}

func TestLogsReportAnUnwritableDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	l := NewLogs(filepath.Join(file, "logs"))
	play(l, script())
	if err := l.Close(); err == nil {
		t.Error("Close reported no error for logs under a regular file")
	}
}

// testBoard returns a board of the given size on a fake clock.
func testBoard(out *bytes.Buffer, width, height int, now *time.Time) *Board {
	return newBoard(out, true, false, func() time.Time { return *now }, func() (int, int) { return width, height })
}

// rule is s followed by "─" up to n cells.
func rule(s string, n int) string { return s + strings.Repeat("─", n-ansi.StringWidth(s)) }

func frameText(b *Board, now time.Time) string {
	return ansi.Strip(strings.Join(b.frame(now), "\n"))
}

func TestBoardShowsEachBuildStateStepElapsedAndProgress(t *testing.T) {
	var out bytes.Buffer
	now := at(3000)
	b := testBoard(&out, 120, 30, &now)
	play(b, script()[:17])
	want := strings.Join([]string{
		rule("── imgbuild · 3s · 2 running, 1 queued ", 119),
		"● base        running        2s  upload disk       ██░░░░░░░░░░░░░░░░░░  11% disk.qcow2 120.0 MiB of 1.0 GiB",
		"● web-server  running        2s  provision: shell  │ E: Unable to locate package nginxx",
		"○ app         queued",
	}, "\n")
	if got := frameText(b, now); got != want {
		t.Errorf("board:\n%s\nwant:\n%s", got, want)
	}
	play(b, script()[17:])
	now = at(60_000)
	want = strings.Join([]string{
		rule("── imgbuild · 7s · 1 succeeded, 1 failed, 1 skipped ", 119),
		"✓ base        succeeded      7s  img-0123 (2 files)",
		"✗ web-server  failed         7s  provision: shell: exit status 100",
		`↷ app         skipped            it needs "web-server", which failed`,
	}, "\n")
	if got := frameText(b, now); got != want {
		t.Errorf("final board:\n%s\nwant:\n%s", got, want)
	}
}

// TestBoardProgressBarIsPaintedOnlyWithColour pins the bar bubbles'
// progress component draws for the board: the filled cells in the running
// colour over a grey track with colour on, the runes alone with colour off.
func TestBoardProgressBarIsPaintedOnlyWithColour(t *testing.T) {
	upload := []event.Event{
		{Time: t0, Type: event.BuildQueued, Build: "base", Driver: "qemu"},
		{Time: t0, Type: event.BuildStarted, Build: "base"},
		{Time: t0, Type: event.StepStarted, Build: "base", Step: "upload"},
		{Time: t0, Type: event.Progress, Build: "base", Message: "disk.qcow2", Done: 512, Total: 1024, Unit: "bytes"},
	}
	for _, color := range []bool{false, true} {
		var out bytes.Buffer
		b := newBoard(&out, color, false, func() time.Time { return at(1000) }, func() (int, int) { return 120, 20 })
		play(b, upload)
		row := b.frame(at(1000))[1]
		if want := "upload  ██████████░░░░░░░░░░  50% disk.qcow2 512 B of 1.0 KiB"; !strings.HasSuffix(ansi.Strip(row), want) {
			t.Errorf("colour %v: row %q does not end with %q", color, ansi.Strip(row), want)
		}
		if !color {
			noEscapes(t, "the row without colour", row)
			continue
		}
		if !strings.Contains(row, "\x1b[38;5;39m█") || !strings.Contains(row, "\x1b[38;5;240m░") {
			t.Errorf("the bar is not painted in the running colour over a grey track: %q", row)
		}
	}
}

func TestBoardRowsFitTheTerminal(t *testing.T) {
	var out bytes.Buffer
	now := at(1000)
	b := testBoard(&out, 40, 10, &now)
	for i := range 50 {
		name := fmt.Sprintf("build-%02d", i)
		b.Handle(event.Event{Time: t0, Type: event.BuildQueued, Build: name, Driver: "local"})
		if i == 42 {
			b.Handle(event.Event{Time: t0, Type: event.BuildStarted, Build: name})
			b.Handle(event.Event{Time: t0, Type: event.StepStarted, Build: name, Step: "a step with a very long name that goes on and on"})
		}
	}
	lines := b.frame(now)
	if len(lines) > 9 {
		t.Errorf("%d lines on a 10-line terminal", len(lines))
	}
	text := frameText(b, now)
	if !strings.Contains(text, "build-42") || !strings.Contains(text, "… and 43 more: 43 queued") {
		t.Errorf("board does not show the running build first and count the rest:\n%s", text)
	}
	for _, l := range lines {
		if w := ansi.StringWidth(l); w > 39 {
			t.Errorf("line of %d cells on a 40-cell terminal: %q", w, ansi.Strip(l))
		}
	}
}

func TestBoardRedrawsInPlaceAndLeavesTheLastBoard(t *testing.T) {
	var out bytes.Buffer
	now := at(0)
	b := testBoard(&out, 80, 24, &now)
	events := script()
	play(b, events[:6])
	b.flush(false)
	first := out.String()
	if strings.Contains(first, "\x1b[J") {
		t.Errorf("first drawing moves the cursor up: %q", first)
	}
	if !strings.Contains(ansi.Strip(first), "base       | build started (local)\n") {
		t.Errorf("lines do not scroll above the board:\n%s", ansi.Strip(first))
	}
	out.Reset()
	b.flush(false)
	if out.Len() != 0 {
		t.Errorf("board redrawn with nothing changed: %q", out.String())
	}
	play(b, events[6:])
	now = at(8000)
	b.flush(false)
	if !strings.HasPrefix(out.String(), "\r\x1b[4A\x1b[J") {
		t.Errorf("redraw does not start by going up the 4 rows of the board: %q", out.String()[:20])
	}
	out.Reset()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	final := ansi.Strip(out.String())
	if !strings.Contains(final, "✓ base") || !strings.HasSuffix(final, "\n") {
		t.Errorf("Close does not leave the final board and a newline: %q", final)
	}
	out.Reset()
	b.Handle(event.Event{Type: event.Message, Build: "base", Message: "late"})
	if got := ansi.Strip(out.String()); got != "base       | late\n" {
		t.Errorf("after Close an event prints %q", got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBoardRedrawsFromItsTicker(t *testing.T) {
	var out testkit.Buffer
	b := newBoard(&out, false, false, func() time.Time { return at(5000) }, func() (int, int) { return 100, 40 })
	ticks := make(chan time.Time)
	b.redrawOn(ticks, func() {})
	defer b.Close()
	// The loop takes a tick only once it is done with the one before, so
	// after two sends the first one's redraw is on the output. (The second
	// finds nothing changed: the clock is fixed.)
	tick := func() {
		ticks <- time.Time{}
		ticks <- time.Time{}
	}

	play(b, script()[:6])
	if got := out.Take(); got != "" {
		t.Fatalf("the board drew before its ticker ticked: %q", got)
	}
	tick()
	text := ansi.Strip(out.Take())
	if !strings.Contains(text, "web-server | build started") || !strings.Contains(text, "○ app") {
		t.Fatalf("the first tick drew nothing:\n%s", text)
	}
	play(b, script()[6:8])
	tick()
	redraw := out.Take()
	if !strings.HasPrefix(redraw, "\r\x1b[4A\x1b[J") || !strings.Contains(ansi.Strip(redraw), "scratch directory ready") {
		t.Errorf("the next tick did not redraw the board over the last one with the new line:\n%q", redraw)
	}
}

func TestSummaryTableListsEachBuildAndStatus(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSummary(&b, scriptResults(), false, nil); err != nil {
		t.Fatal(err)
	}
	noEscapes(t, "summary", b.String())
	golden(t, "summary.golden", b.String())

	b.Reset()
	res := append(scriptResults(), nil, &engine.Result{Build: "long", Driver: "local", Status: event.Cancelled,
		Err: fmt.Errorf("cancelled: %s", strings.Repeat("very long reason ", 10))})
	WriteSummary(&b, res, true, nil)
	text := ansi.Strip(b.String())
	if text == b.String() {
		t.Error("summary in colour has no colour")
	}
	for _, want := range []string{"│ base", "│ succeeded", "│ failed", "│ skipped", "│ cancelled", "│ very long reason very long reason very long reason very long │", "│ very long reason very long reason very long reason           │", "4 builds: 1 succeeded, 1 failed, 1 skipped, 1 cancelled"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
}

func TestNewPrintsPlainLinesWhenNotATerminal(t *testing.T) {
	var b bytes.Buffer
	if r, ok := New(Options{Out: &b}).(*Plain); !ok {
		t.Fatalf("New on a buffer = %T, want *Plain", r)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := New(Options{Out: f})
	if _, ok := r.(*Plain); !ok || IsTerminal(f) {
		t.Fatalf("New on a file = %T", r)
	}
	play(r, script())
	got, _ := os.ReadFile(f.Name())
	noEscapes(t, "plain output to a file", string(got))
	if _, ok := New(Options{Out: f, JSON: true}).(*JSON); !ok {
		t.Error("New with JSON is not *JSON")
	}
}

// TestNoSinkShowsASecret sends events holding a secret everywhere an event
// can hold text through a Bus that knows the secret, to every renderer.
func TestNoSinkShowsASecret(t *testing.T) {
	const secret = "hunter2-s3cr3t"
	var plain, board, jsonOut bytes.Buffer
	dir := t.TempDir()
	now := at(0)
	bd := testBoard(&board, 200, 50, &now)
	logs := NewLogs(dir)
	bus := event.NewBus(NewPlain(Options{Out: &plain, Timestamps: true}), bd, NewJSON(&jsonOut), logs)
	bus.AddSecret(secret)
	ui := event.NewUI(bus, "web", "local")
	bus.Emit(event.Event{Type: event.RunStarted, Message: "password " + secret})
	bus.Emit(event.Event{Type: event.BuildQueued, Build: "web", Driver: "local"})
	ui.Emit(event.Event{Type: event.BuildStarted})
	ui.Emit(event.Event{Type: event.StepStarted, Step: "provision"})
	ui.Say("connecting with %s", secret)
	ui.Warn("the password %s is weak", secret)
	out := ui.Lines("stdout")
	fmt.Fprintf(out, "echo %s\npartial %s", secret, secret)
	out.Close()
	errw := ui.Lines("stderr")
	fmt.Fprintf(errw, "stderr %s\n", secret)
	ui.Progress("upload "+secret, 5, 10, "bytes")
	ui.Emit(event.Event{Type: event.CleanupFailed, Step: "provision", Error: "rm " + secret, Items: []string{"/tmp/" + secret}})
	ui.Emit(event.Event{Type: event.Leftover, Message: "kept " + secret, Items: []string{"vm-" + secret}})
	ui.Emit(event.Event{Type: event.ArtifactMade, Message: "img-" + secret, Artifact: &engine.Artifact{
		ID: "img-" + secret, Files: []string{"/out/" + secret}, Fields: map[string]any{"k": secret, "l": []string{secret}, "m": map[string]string{"x": secret}}}})
	ui.Emit(event.Event{Type: event.BuildFinished, Status: event.Failed, Error: "exit 1: " + secret})
	bus.Emit(event.Event{Type: event.RunFinished, Message: secret})
	bd.Close()
	if err := logs.Close(); err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{"plain": plain.String(), "board": board.String(), "json": jsonOut.String()}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		outputs[e.Name()] = string(b)
	}
	if len(outputs) != 5 {
		t.Errorf("outputs: %d, want plain, board, json, web.log, run.log", len(outputs))
	}
	for name, s := range outputs {
		if strings.Contains(s, secret) {
			t.Errorf("%s shows the secret:\n%s", name, s)
		}
		if !strings.Contains(s, "(sensitive)") {
			t.Errorf("%s shows no redacted value:\n%s", name, s)
		}
	}
}

func TestCleanKeepsTheLastVersionOfALineAndNoControls(t *testing.T) {
	for in, want := range map[string]string{
		"plain\ttab":                 "plain\ttab",
		"10%\r50%\r":                 "50%",
		"\x1b[32mgreen\x1b[0m":       "green",
		"bell\a and \x1b]0;title\a!": "bell and !",
		"bad \xff byte":              "bad \uFFFD byte",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDurationsAndSizesReadWell(t *testing.T) {
	for d, want := range map[time.Duration]string{
		400 * time.Millisecond:          "0.4s",
		12300 * time.Millisecond:        "12.3s",
		125 * time.Second:               "2m05s",
		time.Hour + 2*time.Minute + 1e9: "1h02m",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %s, want %s", d, got, want)
		}
	}
	for n, want := range map[int64]string{512: "512 B", 1536: "1.5 KiB", 3 << 30: "3.0 GiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %s, want %s", n, got, want)
		}
	}
}

// TestSummaryHidesSecrets puts a secret in an artifact's id (an
// output_directory made from one) and, past the 60 columns the error
// column wraps at, across the wrap of an error: the table shows neither.
func TestSummaryHidesSecrets(t *testing.T) {
	const secret = "Zq7-s3cr3t-v4lue"
	bus := event.NewBus()
	bus.AddSecret(secret)
	res := []*engine.Result{
		{Build: "a", Driver: "local", Status: event.Succeeded, Artifact: &engine.Artifact{ID: "out-" + secret}},
		{Build: "b", Driver: "local", Status: event.Failed, Err: fmt.Errorf("provision: %s%s failed", strings.Repeat("x", 40), secret)},
	}
	var b bytes.Buffer
	WriteSummary(&b, res, false, bus.Redact)
	for n := 3; n <= len(secret); n++ {
		if strings.Contains(b.String(), secret[:n]) {
			t.Fatalf("the summary shows %q of the secret:\n%s", secret[:n], b.String())
		}
	}
	if !strings.Contains(b.String(), "| out-(sensitive) ") || !strings.Contains(b.String(), "xxxx(sensitive) failed") {
		t.Errorf("summary:\n%s", b.String())
	}
}

// TestSummaryShowsTheCauseOfAFailure: the whole error, wrapped rather than
// cut, and the failing command's last lines (not those of its cleanup).
func TestSummaryShowsTheCauseOfAFailure(t *testing.T) {
	tails := NewTails()
	ui := event.NewUI(event.NewBus(tails), "web", "local")
	ui.Emit(event.Event{Type: event.StepStarted, Step: "prepare"})
	ui.Lines("stdout").Write([]byte("not this one\n"))
	ui.Emit(event.Event{Type: event.StepStarted, Step: "provision"})
	w := ui.Lines("stderr")
	for i := 1; i <= 7; i++ {
		fmt.Fprintf(w, "line %d\n", i)
	}
	w.Write([]byte("E: Unable to locate package nginx-typo\n"))
	ui.Emit(event.Event{Type: event.CleanupStarted, Step: "launch"})
	ui.Lines("stdout").Write([]byte("cleanup chatter\n"))
	res := []*engine.Result{{Build: "web", Driver: "local", Status: event.Failed,
		Err: errors.New("provision: provisioner 1/1: shell at broken.star:20:26: inline script exited with status 100")}}
	var b bytes.Buffer
	WriteSummaryWith(&b, res, SummaryOptions{Tails: tails})
	text := b.String()
	for _, want := range []string{
		"| provision: provisioner 1/1: shell at broken.star:20:26: |",
		"| inline script exited with status 100                    |",
		"|   line 4 ", "|   line 7 ", "|   E: Unable to locate package nginx-typo ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	for _, not := range []string{"line 3", "not this one", "cleanup chatter", "..."} {
		if strings.Contains(text, not) {
			t.Errorf("summary shows %q:\n%s", not, text)
		}
	}
}

// TestBoardRowShowsTheProvisionerAndItsLastLineThenTheCleanupStep.
func TestBoardRowShowsTheProvisionerAndItsLastLineThenTheCleanupStep(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	b := newBoard(&out, false, false, func() time.Time { return now }, func() (int, int) { return 120, 40 })
	ev := func(e event.Event) { e.Time, e.Build = now, "web"; b.Handle(e) }
	ev(event.Event{Type: event.BuildStarted})
	ev(event.Event{Type: event.StepStarted, Step: "provision"})
	ev(event.Event{Type: event.ProvisionerStarted, Message: "shell 2/5 (scripts/setup.sh)"})
	ev(event.Event{Type: event.Output, Stream: "stdout", Message: "Setting up nginx (1.22.1-9) ..."})
	row := strings.Join(b.frame(now), "\n")
	if !strings.Contains(row, "provision: shell 2/5 (scripts/setup.sh)  │ Setting up nginx (1.22.1-9) ...") {
		t.Errorf("row:\n%s", row)
	}
	ev(event.Event{Type: event.CleanupStarted, Step: "launch instance"})
	row = strings.Join(b.frame(now), "\n")
	if !strings.Contains(row, "cleanup: launch instance") || strings.Contains(row, "nginx") {
		t.Errorf("row during cleanup:\n%s", row)
	}
}

// TestBoardKeepsTheCancellingLineAndShowsItInTheHeader: after Ctrl-C the
// line scrolls above the board (so no redraw erases it) and the header
// says the run is cleaning up.
func TestBoardKeepsTheCancellingLineAndShowsItInTheHeader(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	b := newBoard(&out, false, false, func() time.Time { return now }, func() (int, int) { return 120, 40 })
	b.Handle(event.Event{Time: now, Type: event.RunStarted})
	b.Handle(event.Event{Time: now, Type: event.BuildStarted, Build: "web"})
	b.Handle(event.Event{Time: now, Type: event.RunCancelling, Message: "interrupt: cancelling, cleaning up… (interrupt again to stop at once)"})
	b.Handle(event.Event{Time: now, Type: event.CleanupStarted, Build: "web", Step: "launch instance"})
	b.flush(false)
	b.Handle(event.Event{Time: now, Type: event.Output, Build: "web", Message: "x"})
	b.flush(true)
	screen := ansi.Strip(out.String())
	if !strings.Contains(screen, "interrupt: cancelling, cleaning up… (interrupt again to stop at once)\n") {
		t.Errorf("no cancelling line:\n%s", screen)
	}
	frame := strings.Join(b.frame(now), "\n")
	if !strings.Contains(frame, "── imgbuild · 0s · cancelling, cleaning up… · 1 running") || !strings.Contains(frame, "cleanup: launch instance") {
		t.Errorf("board:\n%s", frame)
	}
}
