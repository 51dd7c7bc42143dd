package null_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/null"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
)

// trail lists step and cleanup events as "step_started connect", ...
func trail(rec *testkit.Recorder) string {
	var out []string
	for _, e := range rec.Of(event.StepStarted, event.StepFinished, event.CleanupStarted, event.CleanupFailed) {
		out = append(out, string(e.Type)+" "+e.Step)
	}
	return strings.Join(out, ", ")
}

func job(cfg *null.Config) (*engine.Job, *testkit.Recorder) {
	ui, rec := testkit.NewUI("web", "null")
	return &engine.Job{Name: "web", Driver: "null", Config: cfg, UI: ui, Steps: &step.Runner{UI: ui}}, rec
}

func TestNullBuildConnectsAndNamesTheHostInItsArtifact(t *testing.T) {
	srv := sshtest.Start(t)
	j, rec := job(&null.Config{SSH: srv.Options()})
	a, err := null.Build(context.Background(), j)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	want := fmt.Sprintf("%s@%s", srv.User, srv.Addr())
	if a.ID != want || a.Build != "web" || a.Driver != "null" {
		t.Errorf("artifact %+v; want ID %s", a, want)
	}
	if a.Fields["host"] != srv.Host || a.Fields["port"] != srv.Port || a.Fields["username"] != srv.User {
		t.Errorf("fields %v", a.Fields)
	}
	for _, out := range []string{"host", "port", "username", "id"} {
		if !null.Def().HasOutput(out) {
			t.Errorf("no declared output %q", out)
		}
		if _, err := a.Output(out); err != nil {
			t.Errorf("Output(%q): %v", out, err)
		}
	}
	if got := trail(rec); got != "step_started connect, step_finished connect, step_started provision, step_finished provision, cleanup_started connect" {
		t.Errorf("steps: %s", got)
	}
	// The cleanup closed the connection: nothing of ours is left on the
	// server.
	testkit.Eventually(t, "the sshd processes serving us to end after the build", func() bool { return srv.Processes() == 0 })
}

func TestNullBuildThatCannotConnectFailsInTheConnectStep(t *testing.T) {
	port, _ := testkit.FreePort() // nothing listens there
	srv := sshtest.Start(t)
	o := srv.Options()
	o.Port, o.Timeout = port, time.Second
	j, rec := job(&null.Config{SSH: o})
	_, err := null.Build(context.Background(), j)
	if err == nil {
		t.Fatal("Build succeeded")
	}
	if !strings.HasPrefix(err.Error(), fmt.Sprintf("connect: no SSH server answered at 127.0.0.1:%d within 1s", port)) {
		t.Errorf("error %q", err)
	}
	if got := trail(rec); !strings.HasPrefix(got, "step_started connect, step_finished connect, cleanup_started connect") {
		t.Errorf("steps: %s", got)
	}
}

func TestNullBuildCancelledWhileWaitingForTheHost(t *testing.T) {
	port, _ := testkit.FreePort() // nothing listens there
	srv := sshtest.Start(t)
	o := srv.Options()
	o.Port, o.Timeout = port, 10*time.Minute
	j, _ := job(&null.Config{SSH: o})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := null.Build(ctx, j)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Minute {
		t.Fatalf("Build = %v after %v; want the context's error at once", err, time.Since(start))
	}
}

// settings builds a settings map from keyword, Go value pairs.
var settings = testkit.Settings

func TestNullKeywordsAreCheckedWhenTheDescriptionIsRead(t *testing.T) {
	r := engine.NewRegistry()
	null.Register(r)
	def := r.Builders["null"]
	if def == nil {
		t.Fatal("null not registered")
	}
	const fp = "SHA256:YT9q8jV0x/N5WCg7Jg/ckN9pKZ/RK09p8m2lS58P1xE"
	for _, tc := range []struct {
		name     string
		settings *value.Map
		deferred bool
		err      string
	}{
		{"complete", settings("ssh_host", "203.0.113.10", "ssh_host_key", fp, "ssh_private_key_file", "id"), false, ""},
		{"no host", settings("ssh_host_key", fp, "ssh_private_key_file", "id"), false,
			"for parameter ssh_host: is required: null() provisions a machine that already exists, so it must be told where (ssh_host = \"203.0.113.10\")"},
		{"host from another build", settings("ssh_host", &value.Template{Parts: []value.Part{{Ref: &value.Ref{Build: "vm", Output: "ip"}}}},
			"ssh_host_key", fp, "ssh_private_key_file", "id"), true, ""},
		{"no host key policy", settings("ssh_host", "h", "ssh_private_key_file", "id"), false,
			"for parameter ssh_host_key: is needed to verify the machine"},
		{"no credentials", settings("ssh_host", "h", "ssh_insecure_ignore_host_key", true), false,
			"for parameter ssh_private_key_file: no way to log in"},
		{"typo", settings("ssh_hots", "h"), false, `unexpected keyword argument "ssh_hots" (did you mean "ssh_host"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := def.Schema.New()
			_, err := def.Schema.Decode(tc.settings, cfg, schema.Options{Deferred: tc.deferred})
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if c := cfg.(*null.Config); c.SSH.Port != 22 || c.SSH.Timeout != 5*time.Minute {
					t.Errorf("defaults not applied: %+v", c.SSH)
				}
				return
			}
			if err == nil || err.Error() != tc.err && !strings.HasPrefix(err.Error(), tc.err) {
				t.Fatalf("Decode = %v; want %q", err, tc.err)
			}
		})
	}
	if docs := def.Schema.Docs(); !strings.Contains(docs, "ssh_host (string)") || !strings.Contains(docs, "ssh_password (string, sensitive)") {
		t.Errorf("docs:\n%s", docs)
	}
}

func TestRelativeKeyPathsAreWorkspaceRelative(t *testing.T) {
	srv := sshtest.Start(t)
	o := srv.Options()
	o.PrivateKeyFile = "client_key" // relative to the workspace: the server's dir
	j, _ := job(&null.Config{SSH: o})
	j.Workspace = srv.Dir
	if _, err := null.Build(context.Background(), j); err != nil {
		t.Fatalf("Build: %v", err)
	}
}
