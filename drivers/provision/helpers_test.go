package provision

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/local"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
)

// events collects a bus's events.
type events struct {
	mu  sync.Mutex
	all []event.Event
}

func (e *events) Handle(ev event.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

// lines returns the Output lines of a stream.
func (e *events) lines(stream string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		if ev.Type == event.Output && ev.Stream == stream {
			out = append(out, ev.Message)
		}
	}
	return out
}

func (e *events) of(t event.Type) []event.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []event.Event
	for _, ev := range e.all {
		if ev.Type == t {
			out = append(out, ev)
		}
	}
	return out
}

// kw builds a settings map from keyword, Go value pairs.
func kw(pairs ...any) *value.Map {
	m := value.NewMap()
	for i := 0; i < len(pairs); i += 2 {
		m.Set(pairs[i].(string), value.FromGo(pairs[i+1]))
	}
	return m
}

// decode decodes settings with def's schema.
func decode(def *engine.ProvisionerDef, settings *value.Map) (any, error) {
	cfg := def.Schema.New()
	_, err := def.Schema.Decode(settings, cfg, schema.Options{})
	return cfg, err
}

// provisioner decodes settings and builds the provisioner.
func provisioner(t *testing.T, def *engine.ProvisionerDef, settings *value.Map) engine.Provisioner {
	t.Helper()
	cfg, err := decode(def, settings)
	if err != nil {
		t.Fatal(err)
	}
	p, err := def.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// machine is a local communicator's directory standing in for a build's
// machine, with the environment a provisioner gets.
type machine struct {
	comm *local.Comm
	env  *engine.ProvisionEnv
	ev   *events
}

func newMachine(t *testing.T) *machine {
	t.Helper()
	comm, err := local.NewCommunicator(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { comm.Close() })
	ev := &events{}
	ui := event.NewUI(event.NewBus(ev), "web", "local")
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
