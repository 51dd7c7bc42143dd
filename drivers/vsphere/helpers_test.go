package vsphere

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/builtins"
	"github.com/imgbuild/imgbuild/drivers/local"
	"github.com/imgbuild/imgbuild/drivers/post"
	"github.com/imgbuild/imgbuild/drivers/provision"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/drivers/vsphere/vcsimtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
	"github.com/imgbuild/imgbuild/starlark/description"
)

func init() {
	// Builds in tests must not pick up a developer's govc settings.
	getenv = func(string) string { return "" }
}

// messages is the Say and Warn messages of rec, one a line.
func messages(rec *testkit.Recorder) string {
	return strings.Join(rec.Messages(event.Message, event.Warning), "\n")
}

// env is a test's counterparts: vcsim, the local sshd its guests are
// reached at, and a workspace.
type env struct {
	t   *testing.T
	sim *vcsimtest.Sim
	ssh *sshtest.Server
	ws  string
	reg *engine.Registry
	// poweroff is the file the guests' shutdown_command creates.
	poweroff string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := newVCEnv(t)
	e.ssh = sshtest.Start(t)
	e.sim.SetGuest(vcsimtest.Guest{Tools: true, AuthorizedKey: func(line string) { e.ssh.AddAuthorizedKey(t, line) }, PowerOffFile: e.poweroff})
	return e
}

// newVCEnv is newEnv without the sshd, for builds that fail before they
// would reach the guest.
func newVCEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, sim: vcsimtest.Start(t), ws: t.TempDir(), reg: engine.NewRegistry()}
	local.Register(e.reg)
	provision.Register(e.reg)
	post.Register(e.reg)
	Register(e.reg)
	e.poweroff = filepath.Join(t.TempDir(), "poweroff")
	return e
}

// base returns the keywords every build of the tests needs: vcsim's
// address and login, the sshd's port, user and host key.
func (e *env) base() map[string]any {
	m := map[string]any{
		"vcenter_server":      e.sim.URL.String(),
		"username":            vcsimtest.Username,
		"password":            vcsimtest.Password,
		"insecure_connection": true,
		"cluster":             "DC0_C0",
	}
	if e.ssh == nil {
		m["ssh_insecure_ignore_host_key"] = true
		return m
	}
	return with(m, map[string]any{
		"ssh_port":     e.ssh.Port,
		"ssh_username": e.ssh.User,
		"ssh_host_key": e.ssh.HostKeyLine,
		// Far above what a busy machine needs for the harness to give the
		// guest its key (the ISO flow's guest fetches it over HTTP).
		"ssh_timeout":            "60s",
		"ssh_handshake_attempts": 1000,
		"ip_settle_timeout":      "0s",
		"ip_wait_timeout":        "10s",
		"shutdown_timeout":       "10s",
	})
}

// cloneKW is base plus the keywords of a clone of the sim's template that
// gets 127.0.0.1 through guest customization (where the sshd listens).
func (e *env) cloneKW(extra map[string]any) map[string]any {
	m := e.base()
	m["template"] = vcsimtest.Template
	m["customize"] = map[string]any{
		"linux_options":     map[string]any{"host_name": "web", "domain": "example.com"},
		"network_interface": []any{map[string]any{"ipv4_address": "127.0.0.1", "ipv4_netmask": 8}},
	}
	return with(m, extra)
}

// vcStar is the Starlark of vc, a dict of the keywords every build of a
// description here needs: vcsim's address and login (the password is the
// variable vc_password, which loadStar gives), the sshd's port, user and
// host key, and short settle and shutdown timeouts; more is lines of
// further keywords.
func (e *env) vcStar(more string) string {
	return fmt.Sprintf(`
vc = dict(
    vcenter_server = %q,
    username = %q,
    password = var("vc_password", sensitive = True),
    insecure_connection = True,
    cluster = "DC0_C0",
    ssh_port = %d,
    ssh_username = %q,
    ssh_host_key = %q,
    ip_settle_timeout = "0s",
    shutdown_timeout = "10s",%s
)
`, e.sim.URL.String(), vcsimtest.Username, e.ssh.Port, e.ssh.User, e.ssh.HostKeyLine, more)
}

// baseStar is the Starlark of base, a vsphere_iso build of vcsim's ISO
// with vc's keywords, whose installer's answers are served over HTTP;
// more is lines of further keywords.
func baseStar(more string) string {
	return fmt.Sprintf(`
base = vsphere_iso(
    name = "base",
    vm_name = "debian-base",
    guest_os_type = "debian12_64Guest",
    storage = [{"disk_size": 8192}],
    network_adapters = [{"network": "VM Network"}],
    iso_paths = [%q],
    http_content = {"/preseed.cfg": "d-i debian-installer/locale string en_US\n"},
    http_ip = "127.0.0.1",
    boot_wait = "0s",
    boot_command = ["<esc><wait0s>", "auto url={http_url}/preseed.cfg<enter>"],%s
    **vc
)
`, vcsimtest.ISOPath, more)
}

// loadStar writes src to the workspace's images.star and loads it as
// imgbuild does, with vc_password given as --var would give it.
func (e *env) loadStar(t *testing.T, src string) *description.Description {
	t.Helper()
	file := filepath.Join(e.ws, "images.star")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := description.Load(description.Options{File: file, Registry: e.reg, Vars: map[string]builtins.VarValue{"vc_password": {Raw: vcsimtest.Password, Source: "--var"}}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func settingsOf(m map[string]any) *value.Map { return value.FromGo(m).(*value.Map) }

// decodeConfig decodes keywords with a builder's schema.
func decodeConfig(def *engine.BuilderDef, kw map[string]any) (any, error) {
	cfg := def.Schema.New()
	_, err := def.Schema.Decode(settingsOf(kw), cfg, schema.Options{})
	return cfg, err
}

// shell is a shell provisioner object.
func shell(lines ...string) *value.Object {
	fields := value.NewMap()
	fields.Set("inline", value.FromGo(lines))
	return &value.Object{Kind: "shell", Fields: *fields, Pos: "images.star:9:5"}
}

// job makes the job of one build, as the engine would.
func (e *env) job(def *engine.BuilderDef, name string, kw map[string]any, provisioners ...*value.Object) (*engine.Job, *testkit.Recorder) {
	e.t.Helper()
	cfg, err := decodeConfig(def, kw)
	if err != nil {
		e.t.Fatalf("decoding the config: %v", err)
	}
	rec := &testkit.Recorder{}
	ui := event.NewUI(event.NewBus(rec), name, def.Schema.Name)
	j := &engine.Job{
		Name: name, Driver: def.Schema.Name, Config: cfg, UI: ui,
		Steps:     &step.Runner{UI: ui, CleanupTimeout: 30 * time.Second},
		WorkDir:   e.t.TempDir(),
		Workspace: e.ws,
	}
	if err := j.AddProvisioners(e.reg, provisioners, nil); err != nil {
		e.t.Fatal(err)
	}
	return j, rec
}

// run runs a build to its end, post-processing included (there is none:
// postFail says whether to act as if a post-processor failed).
func run(ctx context.Context, def *engine.BuilderDef, j *engine.Job, postFail bool) (*engine.Artifact, error) {
	art, err := def.Build(ctx, j)
	failed := err != nil || postFail
	if ferr := j.Steps.Finish(ctx, failed); ferr != nil {
		if err == nil {
			err = ferr
		} else {
			err = fmt.Errorf("%w; %v", err, ferr)
		}
	}
	return art, err
}

// must fails the test with the build's events when err is set.
func must(t *testing.T, rec *testkit.Recorder, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("build failed: %v\nevents:\n%s", err, rec.JSON())
	}
}

// snapshot forgets the calls recorded so far and lists the VMs, for
// noLeftovers after a build.
func (e *env) snapshot(t *testing.T) map[types.ManagedObjectReference]string {
	t.Helper()
	e.sim.ClearRules()
	return e.sim.VMs(t)
}

// noLeftovers checks that a build left no VM, touched no VM it did not
// create and left no export lease or datastore directory.
func (e *env) noLeftovers(t *testing.T, before map[types.ManagedObjectReference]string, mayRename ...string) {
	t.Helper()
	if n := vcsimtest.New(before, e.sim.VMs(t)); len(n) > 0 {
		t.Errorf("the build left %d VM(s): %v", len(n), n)
	}
	var touched []string
	for _, c := range e.sim.Touched(before) {
		ok := false
		for _, n := range mayRename {
			ok = ok || c == "Rename_Task on "+n
		}
		if !ok {
			touched = append(touched, c)
		}
	}
	if len(touched) > 0 {
		t.Errorf("the build changed VMs it did not create: %v", touched)
	}
	if open := e.sim.OpenLeases(); len(open) > 0 {
		t.Errorf("export leases left open: %v", open)
	}
	for _, f := range e.sim.DatastoreFiles(t) {
		if strings.HasPrefix(f, "imgbuild-") {
			t.Errorf("datastore file left: %s", f)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// closedPort returns a 127.0.0.1 port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}
