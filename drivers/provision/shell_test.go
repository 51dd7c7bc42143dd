package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
)

func TestShellInlineStreamsOutput(t *testing.T) {
	m := newMachine(t)
	p := provisioner(t, ShellDef(), kw("inline", []string{"echo one", "echo two >&2", "printf 'no newline'"}))
	if err := m.provision(p); err != nil {
		t.Fatal(err)
	}
	if got := m.ev.Lines("stdout"); !reflect.DeepEqual(got, []string{"one", "no newline"}) {
		t.Errorf("stdout lines %q", got)
	}
	if got := m.ev.Lines("stderr"); !reflect.DeepEqual(got, []string{"two"}) {
		t.Errorf("stderr lines %q", got)
	}
}

func TestShellAcceptsOneStringForInline(t *testing.T) {
	m := newMachine(t)
	p := provisioner(t, ShellDef(), kw("inline", "echo single"))
	if err := m.provision(p); err != nil {
		t.Fatal(err)
	}
	if got := m.ev.Lines("stdout"); !reflect.DeepEqual(got, []string{"single"}) {
		t.Errorf("stdout lines %q", got)
	}
}

func TestShellRemovesItsScriptAndFolder(t *testing.T) {
	m := newMachine(t)
	p := provisioner(t, ShellDef(), kw("inline", []string{`ls "$IMGBUILD_ROOT/tmp"`}))
	if err := m.provision(p); err != nil {
		t.Fatal(err)
	}
	if got := m.ev.Lines("stdout"); len(got) != 1 || !strings.HasPrefix(got[0], "imgbuild-script-") || !strings.HasSuffix(got[0], ".sh") {
		t.Errorf("the script was not in tmp/ while it ran: %q", got)
	}
	if entries, _ := os.ReadDir(filepath.Join(m.comm.Root(), "tmp")); len(entries) != 0 {
		t.Errorf("left in tmp/: %v", entries)
	}
	m.comm.Close()
	if _, err := os.Stat(filepath.Join(m.comm.Root(), "tmp")); err == nil {
		t.Error("tmp/ was left in the machine's directory")
	}
}

func TestShellInlineStopsAtTheFirstFailingCommand(t *testing.T) {
	m := newMachine(t)
	p := provisioner(t, ShellDef(), kw("inline", []string{"echo before", "false", "echo after"}))
	err := m.provision(p)
	wantErr(t, err, "inline script exited with status 1 (valid: 0)")
	if got := m.ev.Lines("stdout"); !reflect.DeepEqual(got, []string{"before"}) {
		t.Errorf("stdout %q", got)
	}
}

func TestShellExitStatusErrorQuotesStderr(t *testing.T) {
	m := newMachine(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "configure.sh")
	body := "#!/bin/sh\nfor i in 1 2 3 4 5 6 7; do echo \"line $i\" >&2; done\nexit 3\n"
	if err := os.WriteFile(script, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	p := provisioner(t, ShellDef(), kw("script", script))
	wantErr(t, m.provision(p), "configure.sh exited with status 3 (valid: 0); last lines of stderr:\n    line 3\n    line 4\n    line 5\n    line 6\n    line 7")

	p = provisioner(t, ShellDef(), kw("script", script, "valid_exit_codes", []any{0, 3}))
	if err := m.provision(p); err != nil {
		t.Errorf("status 3 with valid_exit_codes = [0, 3]: %v", err)
	}
	p = provisioner(t, ShellDef(), kw("script", script, "valid_exit_codes", []any{0, 2}))
	wantPrefix(t, m.provision(p), "configure.sh exited with status 3 (valid: 0, 2)")
}

func TestShellRunsScriptsInOrder(t *testing.T) {
	m := newMachine(t)
	dir := t.TempDir()
	var paths []string
	for i, name := range []string{"b.sh", "a.sh", "c.sh"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(fmt.Sprintf("#!/bin/sh\necho %d %s\n", i, name)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	p := provisioner(t, ShellDef(), kw("scripts", paths))
	if err := m.provision(p); err != nil {
		t.Fatal(err)
	}
	if got := m.ev.Lines("stdout"); !reflect.DeepEqual(got, []string{"0 b.sh", "1 a.sh", "2 c.sh"}) {
		t.Errorf("stdout %q", got)
	}
}

// hostile are environment values that a careless quoting would mangle or
// execute.
var hostile = map[string]string{
	"QUOTES":    `it's "quoted" \'twice\'`,
	"SUBST":     `$(touch pwned) ${HOME} $HOME`,
	"BACKTICKS": "`touch pwned2`",
	"NEWLINES":  "line one\nline two\n\n",
	"UNICODE":   "héllo wörld ✓ 日本語",
	"EMPTY":     "",
	"SPECIALS":  `; rm -rf / & | > < * ? [ ] ~ # ! \ `,
	"TABS":      "a\tb\r\nc",
}

func TestShellEnvValuesRoundTripExactly(t *testing.T) {
	m := newMachine(t)
	var lines []string
	for name := range hostile {
		lines = append(lines, fmt.Sprintf(`printf '%%s' "$%s" > out_%s`, name, name))
	}
	lines = append(lines, `printf '%s %s' "$IMGBUILD_BUILD" "$IMGBUILD_DRIVER" > out_build`)
	for _, exec := range []string{DefaultExecuteCommand, "{vars}/bin/sh -e {path}"} {
		p := provisioner(t, ShellDef(), kw("inline", lines, "env", hostile, "execute_command", exec))
		if err := m.provision(p); err != nil {
			t.Fatal(err)
		}
		for name, want := range hostile {
			got, err := os.ReadFile(filepath.Join(m.comm.Root(), "out_"+name))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != want {
				t.Errorf("%s with %q: got %q, want %q", name, exec, got, want)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(m.comm.Root(), "out_build")); string(b) != "web local" {
			t.Errorf("IMGBUILD_BUILD IMGBUILD_DRIVER = %q", b)
		}
	}
	for _, f := range []string{"pwned", "pwned2"} {
		if _, err := os.Stat(filepath.Join(m.comm.Root(), f)); err == nil {
			t.Errorf("an environment value was executed: %s exists", f)
		}
	}
}

func TestShellTimeout(t *testing.T) {
	m := newMachine(t)
	p := provisioner(t, ShellDef(), kw("inline", []string{"sleep 30"}, "timeout", "300ms"))
	start := time.Now()
	wantErr(t, m.provision(p), `inline script: timed out after 300ms (timeout = "300ms"): make it faster or raise timeout`)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestShellRetries(t *testing.T) {
	defer func(d time.Duration) { retryDelay = d }(retryDelay)
	retryDelay = 10 * time.Millisecond
	m := newMachine(t)
	// Fails twice, then succeeds.
	flaky := []string{`n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; [ "$n" -ge 2 ]`}
	p := provisioner(t, ShellDef(), kw("inline", flaky, "max_retries", 2))
	if err := m.provision(p); err != nil {
		t.Fatal(err)
	}
	if n := len(m.ev.Of("warning")); n != 2 {
		t.Errorf("%d retry warnings, want 2", n)
	}
	p = provisioner(t, ShellDef(), kw("inline", []string{"echo nope >&2; exit 4"}, "max_retries", 1))
	wantErr(t, m.provision(p), "inline script exited with status 4 (valid: 0); last lines of stderr:\n    nope (after 2 attempts; max_retries = 1)")
}

func TestShellPauseBefore(t *testing.T) {
	m := newMachine(t)
	p := provisioner(t, ShellDef(), kw("inline", []string{"true"}, "pause_before", "200ms"))
	start := time.Now()
	if err := m.provision(p); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("did not pause: %s", d)
	}
}

// disconnecting is the local communicator with a fault injected: commands
// that run an uploaded script lose the connection once they ran.
type disconnecting struct {
	engine.Communicator
}

func (d disconnecting) Run(ctx context.Context, cmd *engine.Command) (int, error) {
	status, err := d.Communicator.Run(ctx, cmd)
	if err == nil && strings.Contains(cmd.Command, "chmod +x") {
		return -1, fmt.Errorf("ssh: %w", engine.ErrDisconnected)
	}
	return status, err
}

func (d disconnecting) CommandPath(p string) (string, error) {
	return d.Communicator.(engine.PathMapper).CommandPath(p)
}

func TestShellExpectDisconnect(t *testing.T) {
	m := newMachine(t)
	m.env.Comm = disconnecting{m.comm}
	p := provisioner(t, ShellDef(), kw("inline", []string{"echo rebooting"}))
	wantErr(t, m.provision(p), "inline script: ssh: connection to the machine was lost; if the script reboots the machine, set expect_disconnect = True")
	p = provisioner(t, ShellDef(), kw("inline", []string{"echo rebooting"}, "expect_disconnect", true))
	if err := m.provision(p); err != nil {
		t.Errorf("with expect_disconnect: %v", err)
	}
}

func TestShellCancel(t *testing.T) {
	m := newMachine(t)
	p := provisioner(t, ShellDef(), kw("inline", []string{"sleep 30"}))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	err := p.Provision(ctx, m.env)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(m.comm.Root(), "tmp")); len(entries) != 0 {
		t.Errorf("the script was left after cancel: %v", entries)
	}
}

func TestShellConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		settings *value.Map
		want     string
	}{
		{kw(), "shell needs one of inline, script or scripts"},
		{kw("inline", []string{"x"}, "script", "a.sh"), "shell takes only one of inline, script or scripts, got inline and script"},
		{kw("inline", []string{"x"}, "env", map[string]string{"MY-VAR": "x"}), `for parameter env: "MY-VAR" is not a valid environment variable name (letters, digits and _, not starting with a digit)`},
		{kw("inline", []string{"x"}, "execute_command", "sudo sh"), `for parameter execute_command: "sudo sh" never runs the script: it must contain {path}`},
		{kw("inline", []string{"x"}, "execute_command", "chmod +x {{.Path}}; {{ .Vars }} {{.Path}}"), `for parameter execute_command: "chmod +x {{.Path}}; {{ .Vars }} {{.Path}}" uses Go template syntax ({{.Path}}, {{.Vars}}); write the placeholders as {path}, {vars}`},
		{kw("inline", []string{"x"}, "execute_command", "sh {script}"), `for parameter execute_command: unknown placeholder {script} in "sh {script}" (known: {path}, {vars})`},
		{kw("inline", []string{"x"}, "valid_exit_codes", []any{}), `for parameter valid_exit_codes: is empty, so no exit status would count as success; leave it out to accept only 0`},
		{kw("inline", []string{"x"}, "valid_exit_codes", []any{256}), `for parameter valid_exit_codes: 256 is not an exit status (0 to 255)`},
		{kw("inline", []string{"x"}, "max_retries", -1), `for parameter max_retries: -1 is negative`},
		{kw("inline", []string{"x"}, "timeout", "soon"), `for parameter timeout: "soon" is not a duration (write it like "90s", "5m" or "1h30m")`},
		{kw("inline", []string{"x"}, "only", []string{"a"}, "except", []string{"b"}), `only and except cannot both be set: use one of them`},
		{kw("inline", []string{"x"}, "only", []string{"web-["}), `for parameter only: "web-[" is not a valid build name or glob: syntax error in pattern`},
		{kw("inlne", []string{"x"}), `unexpected keyword argument "inlne" (did you mean "inline"?)`},
	} {
		_, err := testkit.Decode(ShellDef().Schema, tc.settings)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", value.Format(tc.settings), err, tc.want)
		}
	}
}

func TestShellExecuteCommandKeepsShellBraces(t *testing.T) {
	m := newMachine(t)
	p := provisioner(t, ShellDef(), kw("inline", []string{"true"}, "env", map[string]string{"X": "1"},
		"execute_command", `{vars}echo "${X}" {a,b} && { sh {path}; }`))
	if err := m.provision(p); err != nil {
		t.Fatal(err)
	}
	if got := m.ev.Lines("stdout"); !reflect.DeepEqual(got, []string{"1 {a,b}"}) {
		t.Errorf("stdout %q", got)
	}
}

func TestFilter(t *testing.T) {
	def := ShellDef()
	for _, tc := range []struct {
		settings *value.Map
		build    string
		want     bool
	}{
		{kw("inline", "x"), "web", true},
		{kw("inline", "x", "only", []string{"web-*"}), "web-prod", true},
		{kw("inline", "x", "only", []string{"web-*"}), "db", false},
		{kw("inline", "x", "except", []string{"web-*", "db"}), "db", false},
		{kw("inline", "x", "except", []string{"web-*"}), "db", true},
	} {
		cfg, err := testkit.Decode(def.Schema, tc.settings)
		if err != nil {
			t.Fatal(err)
		}
		if got := def.Filter(cfg, tc.build); got != tc.want {
			t.Errorf("%s for %s: %v", value.Format(tc.settings), tc.build, got)
		}
	}
}

func TestShellRemovesAFailedScriptAndToleratesATrailingComment(t *testing.T) {
	m := newMachine(t)
	p := provisioner(t, ShellDef(), kw("inline", []string{"exit 3"}, "execute_command", "chmod +x {path}; {vars}{path} # run it"))
	err := m.provision(p)
	if err == nil || !strings.Contains(err.Error(), "exited with status 3") {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(m.comm.Root(), "tmp")); len(entries) != 0 {
		t.Errorf("a failed script was left in tmp/: %v", entries)
	}
}
