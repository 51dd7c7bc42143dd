package provision

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
)

func TestShellLocalCommandRunsInTheCurrentDirectory(t *testing.T) {
	ws := t.TempDir()
	t.Chdir(ws)
	m := newMachine(t)
	p := provisioner(t, ShellLocalDef(), kw("command", `pwd; echo "$GREETING from $IMGBUILD_BUILD"; echo warn >&2`, "env", map[string]string{"GREETING": "it's me"}))
	if err := m.provision(p); err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(ws)
	if got := m.ev.Lines("stdout"); !reflect.DeepEqual(got, []string{real, "it's me from web"}) {
		t.Errorf("stdout %q", got)
	}
	if got := m.ev.Lines("stderr"); !reflect.DeepEqual(got, []string{"warn"}) {
		t.Errorf("stderr %q", got)
	}
}

func TestShellLocalInlineAndWorkingDirectory(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.Mkdir("site", 0o755); err != nil {
		t.Fatal(err)
	}
	m := newMachine(t)
	p := provisioner(t, ShellLocalDef(), kw("inline", []string{"echo built > index.html", "false", "echo never"}, "working_directory", "site"))
	wantErr(t, m.provision(p), "inline script exited with status 1 (valid: 0)")
	if b, _ := os.ReadFile("site/index.html"); string(b) != "built\n" {
		t.Errorf("site/index.html = %q", b)
	}
	if len(m.ev.Lines("stdout")) != 0 {
		t.Errorf("stdout %q", m.ev.Lines("stdout"))
	}
	p = provisioner(t, ShellLocalDef(), kw("command", "true", "working_directory", "nowhere"))
	wantErr(t, m.provision(p), `working_directory "nowhere" is not a directory: create it first or fix the path`)
}

func TestShellLocalScriptUsesItsInterpreter(t *testing.T) {
	t.Chdir(t.TempDir())
	// Neither is executable: the #! line (or /bin/sh) runs them.
	if err := os.WriteFile("env.sh", []byte("#!/usr/bin/env sh\necho \"$0\" $#\nexit 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("plain.sh", []byte("echo plain\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newMachine(t)
	p := provisioner(t, ShellLocalDef(), kw("script", "env.sh", "valid_exit_codes", []any{7}))
	if err := m.provision(p); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("env.sh")
	if got := m.ev.Lines("stdout"); !reflect.DeepEqual(got, []string{abs + " 0"}) {
		t.Errorf("stdout %q", got)
	}
	p = provisioner(t, ShellLocalDef(), kw("script", "plain.sh"))
	if err := m.provision(p); err != nil {
		t.Fatal(err)
	}
}

func TestShellLocalCancelKillsItsChildren(t *testing.T) {
	t.Chdir(t.TempDir())
	m := newMachine(t)
	p := provisioner(t, ShellLocalDef(), kw("command", `sleep 300 & echo $! > child.pid; wait`))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Provision(ctx, m.env) }()
	pid := testkit.WaitForPIDFile(t, "child.pid")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	testkit.WaitGone(t, pid, "the command's child, after the cancel,")
}

func TestShellLocalTimeout(t *testing.T) {
	m := newMachine(t)
	p := provisioner(t, ShellLocalDef(), kw("command", "sleep 30", "timeout", "200ms"))
	wantErr(t, m.provision(p), `command "sleep 30": timed out after 200ms (timeout = "200ms"): make it faster or raise timeout`)
}

func TestShellLocalConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		settings *value.Map
		want     string
	}{
		{kw(), "shell_local needs one of command, inline or script"},
		{kw("command", "x", "inline", []string{"y"}), "shell_local takes only one of command, inline or script, got command and inline"},
		{kw("command", "x", "env", map[string]string{"": "x"}), `for parameter env: "" is not a valid environment variable name (letters, digits and _, not starting with a digit)`},
		{kw("comand", "x"), `unexpected keyword argument "comand" (did you mean "command"?)`},
	} {
		_, err := testkit.Decode(ShellLocalDef().Schema, tc.settings)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", value.Format(tc.settings), err, tc.want)
		}
	}
}
