package ansible_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/all"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

func registry() *engine.Registry {
	r := engine.NewRegistry()
	all.Register(r)
	return r
}

// requireAnsible skips the test (fails it under IMGBUILD_INTEGRATION=1)
// without ansible-playbook.
func requireAnsible(t testing.TB) {
	t.Helper()
	testkit.RequireProgram(t, "ansible-playbook", "ansible-core")
}

// result is a run of a description.
type result struct {
	sum  *engine.Summary
	rec  *testkit.Recorder
	temp string
	dir  string
}

// load evaluates file in dir.
func load(t testing.TB, dir, file string) (*description.Description, error) {
	t.Helper()
	return description.Load(description.Options{File: filepath.Join(dir, file), Registry: registry()})
}

// run evaluates and runs file in its workspace dir; on, when set, sees
// every event as it comes.
func run(t testing.TB, dir, file string, rec *testkit.Recorder) *result {
	t.Helper()
	d, err := load(t, dir, file)
	if err != nil {
		t.Fatal(err)
	}
	if rec == nil {
		rec = &testkit.Recorder{}
	}
	bus := rec.Bus()
	for _, s := range d.Secrets {
		bus.AddSecret(s)
	}
	temp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	sum := engine.Run(ctx, d.Graph, registry(), bus, engine.RunOptions{
		Workspace: d.Root, TempDir: temp, Tracker: step.NewTracker(), CleanupTimeout: 2 * time.Minute,
	})
	return &result{sum: sum, rec: rec, temp: temp, dir: dir}
}

// ok fails the test unless every build succeeded.
func (r *result) ok(t testing.TB) {
	t.Helper()
	for _, res := range r.sum.Results {
		if res.Err != nil {
			t.Fatalf("build %s failed: %v\n%s", res.Build, res.Err, r.rec.Log())
		}
	}
}

// buildErr returns the named build's error, failing when it succeeded.
func (r *result) buildErr(t testing.TB, name string) string {
	t.Helper()
	res := r.sum.Result(name)
	if res == nil {
		t.Fatalf("no build %q", name)
	}
	if res.Err == nil {
		t.Fatalf("build %q succeeded; want an error\n%s", name, r.rec.Log())
	}
	return res.Err.Error()
}

// nullHost is a null() build's SSH keywords for srv.
func nullHost(srv *sshtest.Server) string {
	return fmt.Sprintf("ssh_host = %q, ssh_port = %d, ssh_username = %q, ssh_private_key_file = %q, ssh_host_key = %q",
		srv.Host, srv.Port, srv.User, srv.ClientKeyFile, srv.HostKeyLine)
}

// readFile returns a file's content, failing the test when it cannot.
func readFile(t testing.TB, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// wantIn fails unless s holds every one of wants.
func wantIn(t testing.TB, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}
