package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

func readme(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestReadmeFirstDescriptionValidatesAsWritten extracts the README's first
// description and validates it unchanged, in a workspace holding the files
// it names (empty: validation checks they exist).
func TestReadmeFirstDescriptionValidatesAsWritten(t *testing.T) {
	text := readme(t)
	i := strings.Index(text, "## A first description")
	if i < 0 {
		t.Fatal(`README has no "## A first description"`)
	}
	m := regexp.MustCompile("(?s)```python\n(.*?)```").FindStringSubmatch(text[i:])
	if m == nil {
		t.Fatal("no python block under A first description")
	}
	files := map[string]string{"images.star": m[1]}
	for _, f := range regexp.MustCompile(`(?:source|script) = "([^"/][^"]*)"`).FindAllStringSubmatch(m[1], -1) {
		files[f[1]] = ""
	}
	dir := testkit.Workspace(t, files)
	code, out, errOut := imgbuild(t, dir, "validate", "images.star")
	if code != 0 {
		t.Fatalf("the README's first description does not validate: exit %d\n%s%s\n--- description\n%s", code, out, errOut, m[1])
	}
}

// foreignFlags are flags the README shows for other programs.
var foreignFlags = []string{"--ignore-missing", "--provider", "--format"} // sha256sum, vagrant up, goss validate

// TestEveryCommandAndFlagInTheReadmeExists compares the README with the
// command line: every `imgbuild CMD` it shows is a command, and every
// --flag it names is one of some command's (or imgbuild's own).
func TestEveryCommandAndFlagInTheReadmeExists(t *testing.T) {
	text := readme(t)
	app := newApp(io.Discard, io.Discard)
	flags := map[string]bool{}
	addFlags := func(names []string) {
		for _, n := range names {
			flags["--"+n] = true
		}
	}
	for _, f := range app.Flags {
		addFlags(f.Names())
	}
	addFlags([]string{"version", "help"})
	var addCommands func(cs []*cli.Command)
	addCommands = func(cs []*cli.Command) {
		for _, c := range cs {
			for _, f := range c.Flags {
				addFlags(f.Names())
			}
			addCommands(c.Subcommands) // cache prune --older-than
		}
	}
	addCommands(app.Commands)
	cmdRef := regexp.MustCompile("(?m)(?:`|^    |bin/)imgbuild ([a-z]+)")
	seen := 0
	for _, m := range cmdRef.FindAllStringSubmatch(text, -1) {
		seen++
		if app.Command(m[1]) == nil {
			t.Errorf("the README shows imgbuild %s, which is not a command", m[1])
		}
	}
	if seen < 8 {
		t.Errorf("found only %d command references: is the pattern stale?", seen)
	}
	for _, f := range regexp.MustCompile(`--[a-z][a-z0-9-]*`).FindAllString(text, -1) {
		if !flags[f] && !slices.Contains(foreignFlags, f) {
			t.Errorf("the README names %s, which no command takes", f)
		}
	}
	// And the other way: every command is in the README.
	for _, c := range app.VisibleCommands() {
		if c.Name != "help" && !strings.Contains(text, "imgbuild "+c.Name) {
			t.Errorf("the README does not mention imgbuild %s", c.Name)
		}
	}
}

// TestReadmeSaysHowToInstall: go install and a release binary.
func TestReadmeSaysHowToInstall(t *testing.T) {
	text := readme(t)
	for _, want := range []string{"go install github.com/imgbuild/imgbuild/cmd/imgbuild@latest", "SHA256SUMS", "make release"} {
		if !strings.Contains(text, want) {
			t.Errorf("the README lacks %q", want)
		}
	}
}
