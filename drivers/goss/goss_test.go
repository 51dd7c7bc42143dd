package goss_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/cfgtool/cfgtest"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine/event"
)

// TestEverythingUpToTheGossInvocation: against the private sshd, goss()
// as a test makes its directory, uploads goss_path as goss (mode 0755),
// the gossfiles (0644) and the vars file (0600), and runs goss validate
// there with every keyword on its command line. goss itself cannot be had
// on this machine (its module is not served by the module proxy here, and
// it is in no archive this machine reaches), so goss_path is a file that
// is not a program: the run ends at the invocation, with the message that
// says goss_path could not be run; the directory is kept to read what was
// uploaded.
func TestEverythingUpToTheGossInvocation(t *testing.T) {
	srv := sshtest.Start(t)
	remote := filepath.Join(t.TempDir(), "goss")
	dir := cfgtest.Workspace(t, "testdata", cfgtest.TestedNull(srv, fmt.Sprintf(`[goss(
        name = "web checks",
        goss_path = "bin/goss",
        tests = ["goss/goss.yaml", "goss/included.yaml"],
        goss_file = "goss.yaml",
        vars_file = "goss/vars.yaml",
        vars_inline = {"port": "80", "site": "it's here"},
        vars_env = {"ROLE": "www-data", "GOSS_USE_ALPHA": "0"},
        format_options = "pretty",
        retry_timeout = "30s",
        sleep = "2s",
        package = "dpkg",
        remote_path = %q,
        clean_remote_path = False,
    )]`, remote)))
	r := cfgtest.Run(t, dir, "images.star", nil)
	msg := r.Err(t, "machine")
	cfgtest.WantIn(t, "the error", msg,
		`test "web checks": goss: goss_path bin/goss could not be run on the machine (exit status 126):`,
		"cannot execute binary file",
		"goss_path must be a goss binary for the machine's OS and architecture")

	want := "goss: running cd " + remote + " && GOSS_USE_ALPHA=0 ROLE=www-data " + remote + "/goss -g " + remote + "/goss.yaml --vars " + remote + "/vars" +
		` --vars-inline '{"port":"80","site":"it'\''s here"}' --package dpkg validate --retry-timeout 30s --sleep 2s --format json --format-options pretty` + "\n"
	cfgtest.WantIn(t, "the log", r.Rec.Log(), want, "goss: uploading bin/goss and goss/goss.yaml, goss/included.yaml to "+remote)

	for name, c := range map[string]struct {
		src  string
		mode os.FileMode
	}{
		"goss":          {"bin/goss", 0o755},
		"goss.yaml":     {"goss/goss.yaml", 0o644},
		"included.yaml": {"goss/included.yaml", 0o644},
		"vars":          {"goss/vars.yaml", 0o600},
	} {
		p := filepath.Join(remote, name)
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s was not uploaded: %v", name, err)
			continue
		}
		if fi.Mode().Perm() != c.mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), c.mode)
		}
		if got, want := cfgtest.ReadFile(t, p), cfgtest.ReadFile(t, filepath.Join(dir, c.src)); got != want {
			t.Errorf("%s: content %q, want %s's %q", name, got, c.src, want)
		}
	}
	if fi, err := os.Stat(remote); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the remote directory: %v, %v; want mode 0700", fi, err)
	}
	finished := r.Rec.Of(event.TestFinished)
	if len(finished) != 1 || finished[0].Message != "web checks" || finished[0].Status != event.Failed {
		t.Errorf("test events %+v", finished)
	}
}

// TestByDefaultGossRunsInADirectoryOfItsOwnThatGoesAfterward: the
// defaults on the command line (the first gossfile, --retry-timeout 0s
// --sleep 1s --format json), a directory imgbuild-goss-<random> made in
// remote_folder, and nothing left there once goss has run.
func TestByDefaultGossRunsInADirectoryOfItsOwnThatGoesAfterward(t *testing.T) {
	srv := sshtest.Start(t)
	folder := t.TempDir()
	dir := cfgtest.Workspace(t, "testdata", cfgtest.TestedNull(srv, fmt.Sprintf(`[goss(goss_path = "bin/goss", tests = ["goss/goss.yaml"], remote_folder = %q)]`, folder)))
	r := cfgtest.Run(t, dir, "images.star", nil)
	cfgtest.WantIn(t, "the error", r.Err(t, "machine"), `test "goss (goss/goss.yaml)": goss: goss_path bin/goss could not be run on the machine (exit status 126)`)
	var line string
	for _, l := range strings.Split(r.Rec.Log(), "\n") {
		if i := strings.Index(l, "goss: running "); i >= 0 {
			line = l[i+len("goss: running "):]
		}
	}
	remote, _, _ := strings.Cut(strings.TrimPrefix(line, "cd "), " ")
	if filepath.Dir(remote) != folder || !strings.HasPrefix(filepath.Base(remote), "imgbuild-goss-") {
		t.Fatalf("the command %q does not run in a directory of its own in %s", line, folder)
	}
	if want := "cd " + remote + " && " + remote + "/goss -g " + remote + "/goss.yaml validate --retry-timeout 0s --sleep 1s --format json"; line != want {
		t.Errorf("command:\n got %s\nwant %s", line, want)
	}
	if left, _ := os.ReadDir(folder); len(left) > 0 {
		t.Errorf("left in remote_folder: %v", left)
	}
}

// TestBadGossInputIsAnErrorAtTheKeyword: mistakes found when the
// description is evaluated, each with what to do.
func TestBadGossInputIsAnErrorAtTheKeyword(t *testing.T) {
	srv := sshtest.Start(t)
	for _, c := range []struct{ call, want string }{
		{`goss(tests = ["goss/goss.yaml"])`, `goss: for parameter goss_path: is not set: name the goss binary on this machine that goss() uploads and runs on the build's machine`},
		{`goss(goss_path = "bin/no-goss", tests = ["goss/goss.yaml"])`, `goss: for parameter goss_path: "bin/no-goss" does not exist (looked for `},
		{`goss(goss_path = "bin/goss", tests = ["goss/missing.yaml"])`, `goss: for parameter tests: "goss/missing.yaml" does not exist (looked for `},
		{`goss(goss_path = "bin/goss")`, `goss: for parameter tests: is empty: name at least one gossfile, such as "goss/goss.yaml"`},
		{`goss(goss_path = "bin/goss", tests = ["goss/goss.yaml"], goss_file = "gos.yaml")`, `goss: for parameter goss_file: "gos.yaml" is not one of tests ([goss.yaml]): name the gossfile to validate by its base name (did you mean "goss.yaml"?)`},
		{`goss(goss_path = "bin/goss", tests = ["goss/goss.yaml"], format = "yaml")`, `goss: for parameter format: "yaml" is not one of "json", "documentation"`},
		{`goss(goss_path = "bin/goss", tests = ["goss/goss.yaml"], vars_file = "goss/nope.yaml")`, `goss: for parameter vars_file: "goss/nope.yaml" does not exist`},
		{`goss(goss_path = "bin/goss", tests = ["goss/goss.yaml"], vars_env = {"1X": "a"})`, `goss: for parameter vars_env: "1X" is not an environment variable's name`},
		{`goss(goss_path = "bin/goss", tests = ["goss/goss.yaml"], remote_path = "goss")`, `goss: for parameter remote_path: "goss" is not an absolute path on the machine`},
	} {
		dir := cfgtest.Workspace(t, "testdata", cfgtest.TestedNull(srv, "["+c.call+"]"))
		_, err := cfgtest.Load(dir, "images.star")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %s", c.call, err, c.want)
		}
	}
}

// TestAGossTestWhoseGossfileDoesNotExistIsAnError: the same message as
// for any test file that does not exist, at the keyword's place.
func TestAGossTestWhoseGossfileDoesNotExistIsAnError(t *testing.T) {
	srv := sshtest.Start(t)
	dir := cfgtest.Workspace(t, "testdata", cfgtest.TestedNull(srv, `[goss(goss_path = "bin/goss", tests = ["goss/missing.yaml"])]`))
	_, err := cfgtest.Load(dir, "images.star")
	want := `images.star:2:44: goss: for parameter tests: "goss/missing.yaml" does not exist (looked for ` + filepath.Join(dir, "goss/missing.yaml") + ")"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v\nwant %s", err, want)
	}
}

// TestAGossPathThatWentAwayIsAnErrorAtRunTime: goss_path checked again
// when the test runs, in case it went after the description was read.
func TestAGossPathThatWentAwayIsAnErrorAtRunTime(t *testing.T) {
	srv := sshtest.Start(t)
	dir := cfgtest.Workspace(t, "testdata", cfgtest.TestedNull(srv, `[goss(goss_path = "bin/goss", tests = ["goss/goss.yaml"])]`))
	d, err := cfgtest.Load(dir, "images.star")
	if err != nil || d == nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "bin/goss")); err != nil {
		t.Fatal(err)
	}
	r := cfgtest.RunLoaded(t, d, nil)
	cfgtest.WantIn(t, "the error", r.Err(t, "machine"), "goss: goss_path: bin/goss does not exist (", "): name the goss binary goss() uploads on this machine")
}
