package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

func TestExitCodes(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{
		"ok.star":      `local(name = "a", provisioners = [shell(inline = ["true"])])`,
		"fails.star":   `local(name = "a", provisioners = [shell(inline = ["echo boom >&2", "exit 3"])])`,
		"invalid.star": `local(name = "a", nope = 1)`,
	})
	cases := []struct {
		args       []string
		code       int
		wantStderr string
	}{
		{[]string{"run", "ok.star", "--no-color"}, 0, ""},
		{[]string{"run", "fails.star", "--no-color"}, 1, ""},
		{[]string{"run", "invalid.star"}, 2, `invalid.star:1:19: local: unexpected keyword argument "nope"`},
		{[]string{"plan", "invalid.star"}, 2, `invalid.star:1:19: local: unexpected keyword argument "nope"`},
		{[]string{"validate", "missing.star"}, 2, "cannot read the description"},
		{[]string{"run"}, 2, "run takes one description file or directory, like imgbuild run images.star"},
		{[]string{"run", "ok.star", "--on-error", "panic"}, 2, `--on-error "panic": want cleanup, abort or ask`},
		{[]string{"run", "ok.star", "--parallel", "0"}, 2, "--parallel 0: want at least 1"},
		{[]string{"run", "ok.star", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"run", "ok.star", "--var", "novalue"}, 2, `--var "novalue": write it as --var name=value`},
		{[]string{"plan", "ok.star", "--only", "zzz"}, 2, `no build matches "zzz" (builds: a)`},
	}
	for _, c := range cases {
		code, out, errOut := imgbuild(t, dir, c.args...)
		if code != c.code {
			t.Errorf("imgbuild %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(c.args, " "), code, c.code, out, errOut)
		}
		if c.wantStderr != "" && !strings.Contains(errOut, c.wantStderr) {
			t.Errorf("imgbuild %s: stderr %q lacks %q", strings.Join(c.args, " "), errOut, c.wantStderr)
		}
	}
}

func TestFailedBuildSaysWhyAndSkipsDependents(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
base = local(name = "base", provisioners = [shell(inline = ["echo going down >&2", "exit 3"])])
local(name = "web", env = {"B": base.id})
local(name = "other")
`})
	code, out, _ := imgbuild(t, dir, "run", "images.star", "--no-color")
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{"going down", "exited with status 3", `it needs "base", which failed`, "other | build succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "output/base")); err == nil {
		t.Error("a failed build left its output directory")
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, ".imgbuild/tmp")); len(entries) != 0 {
		t.Errorf("scratch directories left: %v", entries)
	}
}

func TestOnlyBringsDependenciesAndExceptDrops(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
base = local(name = "base")
local(name = "web-1", env = {"B": base.id})
local(name = "web-2", env = {"B": base.id})
local(name = "db")
`})
	code, out, errOut := imgbuild(t, dir, "plan", "images.star", "--only", "web-*", "--except", "web-2", "--json")
	if code != 0 {
		t.Fatal(errOut)
	}
	var plan struct{ Builds []struct{ Name string } }
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range plan.Builds {
		names = append(names, b.Name)
	}
	if strings.Join(names, ",") != "base,web-1" {
		t.Errorf("selected %v, want base,web-1", names)
	}
}

// TestPlanGolden checks the text, JSON and DOT plans of testdata/plans
// against golden files (go test -update rewrites them).
func TestPlanGolden(t *testing.T) {
	src := filepath.Join(repoRoot(t), "testdata", "plans")
	files, _ := filepath.Glob(filepath.Join(src, "*.star"))
	if len(files) == 0 {
		t.Fatal("no golden plans")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".star")
		for _, form := range []struct{ flag, ext string }{{"", "txt"}, {"--json", "json"}, {"--dot", "dot"}} {
			t.Run(name+"."+form.ext, func(t *testing.T) {
				args := []string{"plan", filepath.Base(f), "--var", "version=1.0"}
				if form.flag != "" {
					args = append(args, form.flag)
				}
				code, out, errOut := imgbuild(t, src, args...)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errOut)
				}
				testkit.Golden(t, "plan", filepath.Join(src, name+"."+form.ext), out, *update)
			})
		}
	}
}

const secret = "s3cr3t-Tok3n-value"

// TestSensitiveValueAppearsNowhere runs a build that uses a sensitive
// variable in settings, environment, a provisioner that prints it and a
// manifest, then greps the plan, the terminal, --json, the logs, the
// manifest and the state for it.
func TestSensitiveValueAppearsNowhere(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
token = var("token", sensitive = True)
local(
    name = "web",
    env = {"TOKEN": token},
    files = {"etc/app.conf": "token = " + token + "\n"},
    provisioners = [
        shell(inline = ["echo the token is $TOKEN", "echo and on stderr $TOKEN >&2"], env = {"AUTH": "Bearer " + token}),
        shell_local(command = "echo local sees $AUTH", env = {"AUTH": token}),
    ],
    post = [manifest(output = "output/manifest.json", custom_data = {"auth": token})],
)
`})
	var seen bytes.Buffer
	for _, args := range [][]string{
		{"plan", "images.star", "--var", "token=" + secret},
		{"plan", "images.star", "--var", "token=" + secret, "--json"},
		{"plan", "images.star", "--var", "token=" + secret, "--dot"},
		{"run", "images.star", "--var", "token=" + secret, "--no-color"},
		{"run", "images.star", "--var", "token=" + secret, "--json"},
	} {
		if args[0] == "run" {
			os.RemoveAll(filepath.Join(dir, "output"))
		}
		code, out, errOut := imgbuild(t, dir, args...)
		if code != 0 {
			t.Fatalf("imgbuild %v: exit %d\n%s\n%s", args, code, out, errOut)
		}
		seen.WriteString(out + errOut)
		if strings.Contains(out+errOut, secret) {
			t.Errorf("imgbuild %s shows the secret:\n%s%s", strings.Join(args, " "), out, errOut)
		}
	}
	if !strings.Contains(seen.String(), "the token is (sensitive)") {
		t.Errorf("the provisioner's output was not shown redacted:\n%s", seen.String())
	}
	// The secret does reach the build itself...
	conf, _ := os.ReadFile(filepath.Join(dir, "output/web/etc/app.conf"))
	if string(conf) != "token = "+secret+"\n" {
		t.Errorf("the build did not get the secret: %q", conf)
	}
	// ...but nothing imgbuild writes about it.
	filepath.WalkDir(filepath.Join(dir, ".imgbuild"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if data, _ := os.ReadFile(p); bytes.Contains(data, []byte(secret)) {
				t.Errorf("%s holds the secret", p)
			}
		}
		return nil
	})
	manifest, _ := os.ReadFile(filepath.Join(dir, "output/manifest.json"))
	if bytes.Contains(manifest, []byte(secret)) || !bytes.Contains(manifest, []byte("(sensitive)")) {
		t.Errorf("manifest:\n%s", manifest)
	}
}

func TestFmt(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{
		"messy.star": "local(name='a',provisioners=[shell(inline=['true'])])\n",
		"tidy.star":  "local(name = \"a\")\n",
	})
	code, out, _ := imgbuild(t, dir, "fmt", "--check")
	if code != 1 || !strings.Contains(out, "messy.star needs formatting") || strings.Contains(out, "tidy.star") {
		t.Fatalf("fmt --check: exit %d\n%s", code, out)
	}
	if code, _, errOut := imgbuild(t, dir, "fmt", "messy.star"); code != 0 {
		t.Fatal(errOut)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "messy.star"))
	want := "local(name = \"a\", provisioners = [shell(inline = [\"true\"])])\n"
	if string(got) != want {
		t.Errorf("formatted:\n%s\nwant:\n%s", got, want)
	}
	if code, _, _ := imgbuild(t, dir, "fmt", "--check"); code != 0 {
		t.Errorf("fmt --check after fmt: exit %d", code)
	}
	os.WriteFile(filepath.Join(dir, "broken.star"), []byte("local(\n"), 0o644)
	if code, _, errOut := imgbuild(t, dir, "fmt", "broken.star"); code != 2 || !strings.Contains(errOut, "cannot format broken.star:3:1: syntax error") {
		t.Errorf("fmt of a broken file: exit %d, %s", code, errOut)
	}
}

func TestDocsComeFromTheSchemas(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := imgbuild(t, dir, "docs")
	if code != 0 || !strings.Contains(out, "Builders:") || !strings.Contains(out, "local") || !strings.Contains(out, "shell") {
		t.Errorf("docs index: exit %d\n%s", code, out)
	}
	code, out, _ = imgbuild(t, dir, "docs", "shell")
	for _, want := range []string{"shell(...)", "inline (list of string)", "valid_exit_codes (list of int, default [0])", "expect_disconnect"} {
		if !strings.Contains(out, want) {
			t.Errorf("docs shell lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = imgbuild(t, dir, "docs", "local")
	if !strings.Contains(out, "Outputs") || !strings.Contains(out, "directory") {
		t.Errorf("docs local lacks outputs:\n%s", out)
	}
	code, _, errOut := imgbuild(t, dir, "docs", "shel")
	if code != 2 || !strings.Contains(errOut, `no builtin named "shel" (did you mean "shell"?)`) {
		t.Errorf("docs shel: exit %d, %s", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := imgbuild(t, t.TempDir(), "version")
	if code != 0 || !strings.HasPrefix(out, "imgbuild ") {
		t.Errorf("version: exit %d %q", code, out)
	}
}

// slowRun is the real binary running a description whose build sleeps.
type slowRun struct {
	cmd            *exec.Cmd
	stdout, stderr *testkit.Buffer
	dir            string
	sleeps         []int // the build's "sleep 60" processes
}

// startRun starts the real binary on a description whose build runs
// script, and waits until the script's "sleep 60" is running.
func startRun(t *testing.T, script string) *slowRun {
	t.Helper()
	dir := testkit.Workspace(t, map[string]string{"images.star": `
local(name = "slow", provisioners = [shell(inline = ["` + script + `"])])
`})
	r := &slowRun{cmd: exec.Command(binary, "run", "images.star", "--no-color"), stdout: &testkit.Buffer{}, stderr: &testkit.Buffer{}, dir: dir}
	r.cmd.Dir = dir
	r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		for _, pid := range r.sleeps {
			if isSleep(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	testkit.Eventually(t, "the build's sleep 60 to run", func() bool {
		r.sleeps = sleepsUnder(r.cmd.Process.Pid)
		return strings.Contains(r.stdout.String(), "running inline script") && len(r.sleeps) > 0
	})
	return r
}

// sleepsUnder lists the "sleep 60" processes descending from pid. Only
// those: other test runs on the machine may have sleeps of their own.
func sleepsUnder(pid int) []int {
	return slices.DeleteFunc(testkit.Descendants(pid), func(p int) bool { return !isSleep(p) })
}

// isSleep reports whether pid is a live "sleep 60".
func isSleep(pid int) bool {
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return string(cmdline) == "sleep\x0060\x00"
}

func TestInterruptCancelsCleansUpAndExits130(t *testing.T) {
	r := startRun(t, "sleep 60")
	r.cmd.Process.Signal(syscall.SIGINT)
	err := r.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr.String(), "interrupt: cancelling the builds and cleaning up") {
		t.Errorf("stderr: %s", r.stderr)
	}
	if !strings.Contains(r.stdout.String(), "cancelled") {
		t.Errorf("summary does not say cancelled:\n%s", r.stdout)
	}
	if entries, _ := os.ReadDir(filepath.Join(r.dir, ".imgbuild/tmp")); len(entries) != 0 {
		t.Errorf("scratch directories left: %v", entries)
	}
	// Killed is not yet gone: give a killed process its moment to die.
	testkit.Poll(5*time.Second, func() bool { return !slices.ContainsFunc(r.sleeps, isSleep) })
	if n := len(slices.DeleteFunc(slices.Clone(r.sleeps), func(pid int) bool { return !isSleep(pid) })); n > 0 {
		t.Errorf("%d sleep processes survived the cancel", n)
	}
}

func TestSecondInterruptStopsAtOnceAndListsWhatMayBeLeft(t *testing.T) {
	// The build ignores SIGTERM, so cancelling it takes a few seconds: the
	// second interrupt arrives while it is still being cleaned up.
	r := startRun(t, "trap '' TERM; sleep 60")
	r.cmd.Process.Signal(syscall.SIGINT)
	testkit.Eventually(t, "imgbuild to take the first interrupt", func() bool {
		return strings.Contains(r.stderr.String(), "interrupt: cancelling the builds and cleaning up")
	})
	r.cmd.Process.Signal(syscall.SIGINT)
	err := r.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	for _, want := range []string{"stopping at once, without cleaning up", "may be left behind:", "slow: "} {
		if !strings.Contains(r.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

func TestCompletion(t *testing.T) {
	code, out, _ := imgbuild(t, t.TempDir(), "completion", "bash")
	if code != 0 || !strings.Contains(out, "complete -o bashdefault -o default -F _imgbuild_complete imgbuild") {
		t.Errorf("completion bash: exit %d\n%s", code, out)
	}
	// The script works by asking imgbuild itself.
	_, out, _ = imgbuild(t, t.TempDir(), "docs", "--generate-bash-completion")
	if !strings.Contains(out, "shell\n") || !strings.Contains(out, "var\n") {
		t.Errorf("docs completion lists no builtins:\n%s", out)
	}
	if code, _, errOut := imgbuild(t, t.TempDir(), "completion", "fish"); code != 2 || !strings.Contains(errOut, "completion takes bash or zsh") {
		t.Errorf("completion fish: exit %d %s", code, errOut)
	}
}

func TestJSONIsOneEventPerLine(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
base = local(name = "base", provisioners = [shell(inline = ["echo hello from base"])])
local(name = "web", env = {"B": base.id})
`})
	code, out, errOut := imgbuild(t, dir, "run", "images.star", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	types := map[string]int{}
	sawOutput := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e struct {
			Type, Build, Message, Status string
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not a JSON event: %q: %v", line, err)
		}
		types[e.Type]++
		sawOutput = sawOutput || (e.Type == "output" && e.Build == "base" && e.Message == "hello from base")
	}
	if types["run_started"] != 1 || types["run_finished"] != 1 || types["build_finished"] != 2 || types["artifact"] != 2 {
		t.Errorf("event counts: %v", types)
	}
	if !sawOutput {
		t.Error("the provisioner's output line is not an event")
	}
}

func TestTimestamps(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `local(name = "a")`})
	code, out, _ := imgbuild(t, dir, "run", "images.star", "--no-color", "--timestamps")
	if code != 0 {
		t.Fatal(out)
	}
	first := strings.SplitN(out, "\n", 2)[0]
	if len(first) < 13 || first[2] != ':' || first[5] != ':' || first[8] != '.' {
		t.Errorf("first line not timestamped: %q", first)
	}
}

func TestListOutputFlowsIntoAnotherBuild(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"images.star": `
base = local(name = "base", files = {"a.txt": "A", "b.txt": "B"})
local(name = "copy", provisioners = [file(sources = base.files, destination = "/copied/")])
`})
	// Run from elsewhere: paths must be taken from the workspace.
	code, out, errOut := imgbuild(t, t.TempDir(), "run", filepath.Join(dir, "images.star"), "--no-color")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, f := range []string{"a.txt", "b.txt"} {
		if _, err := os.Stat(filepath.Join(dir, "output/copy/copied", f)); err != nil {
			t.Errorf("base.files did not reach copy: %v", err)
		}
	}
}

func TestNullBuildProvisionsAnExistingMachineOverSSH(t *testing.T) {
	srv := sshtest.Start(t)
	dir := testkit.Workspace(t, map[string]string{
		"images.star": `
host = null(
    name = "host",
    ssh_host = "127.0.0.1",
    ssh_port = ` + fmt.Sprint(srv.Port) + `,
    ssh_username = "` + srv.User + `",
    ssh_private_key_file = "` + srv.ClientKeyFile + `",
    ssh_host_key = "` + srv.HostKeyFingerprint + `",
    provisioners = [
        shell(inline = ['echo "hello $WHO" > "$OUT"'], env = {"WHO": "it's $(me)", "OUT": "` + filepath.Join(t.TempDir(), "out") + `"}),
        file(content = "payload", destination = "` + filepath.Join(t.TempDir(), "payload") + `"),
    ],
)
local(name = "report", files = {"host.txt": "x"}, env = {"HOST": host.id})
`,
	})
	code, out, errOut := imgbuild(t, dir, "run", "images.star", "--no-color")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"host   | build succeeded", srv.User + "@127.0.0.1:" + fmt.Sprint(srv.Port)} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
