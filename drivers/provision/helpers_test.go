package provision

import (
	"context"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/local"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
)

// kw builds a settings map from keyword, Go value pairs.
var kw = testkit.Settings

// provisioner decodes settings and builds the provisioner.
func provisioner(t *testing.T, def *engine.ProvisionerDef, settings *value.Map) engine.Provisioner {
	t.Helper()
	return testkit.New(t, def.Schema, def.New, settings)
}

// machine is a local communicator's directory standing in for a build's
// machine, with the environment a provisioner gets.
type machine struct {
	comm *local.Comm
	env  *engine.ProvisionEnv
	ev   *testkit.Recorder
}

func newMachine(t *testing.T) *machine {
	t.Helper()
	comm, err := local.NewCommunicator(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { comm.Close() })
	ui, ev := testkit.NewUI("web", "local")
	return &machine{
		comm: comm, ev: ev,
		env: &engine.ProvisionEnv{UI: ui, Comm: comm, Build: "web", Driver: "local", WorkDir: t.TempDir()},
	}
}

func (m *machine) provision(p engine.Provisioner) error {
	return p.Provision(context.Background(), m.env)
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if err.Error() != want {
		t.Fatalf("error:\n%s\nwant:\n%s", err, want)
	}
}

func wantPrefix(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error:\n%v\nwant it to start with:\n%s", err, want)
	}
}
