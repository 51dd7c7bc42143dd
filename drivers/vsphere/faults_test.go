package vsphere

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/drivers/vsphere/vcsimtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
)

// The fault and cancel matrix: a build is first run to success while the
// harness records which vSphere methods each step calls. Then, for every
// step, the build runs again with
//
//   - a fault injected into each method the step calls (the first call of
//     it once the step started), and
//   - a cancel when the step starts, and another in the middle of the
//     step's first vSphere call,
//
// and each time the counterpart is listed: no VM the build made is left
// (the bar is 0), no VM it did not make was changed, no export lease is
// open, no datastore directory of the build remains, no export file and no
// library item is left.

// plumbing are calls that only read or wait: a fault in them is tried only
// for steps that make no other call.
var plumbing = map[string]bool{
	"RetrievePropertiesEx": true, "RetrieveProperties": true, "ContinueRetrievePropertiesEx": true,
	"WaitForUpdatesEx": true, "WaitForUpdates": true, "CreatePropertyCollector": true, "CreateFilter": true,
	"DestroyPropertyFilter": true, "DestroyPropertyCollector": true, "CancelWaitForUpdates": true,
	"DestroyView": true, "CurrentTime": true, "RetrieveServiceContent": true,
}

// scenario is a build to run the matrix on.
type scenario struct {
	def   *engine.BuilderDef
	guest vcsimtest.Guest
	// kw returns the keywords of run i (names that must be unique per run
	// carry i).
	kw  func(i int) map[string]any
	out func(i int) string // export directory of run i
	// check runs after every failed run.
	check func(t *testing.T)
	// mayRename are VMs a failed build may rename and rename back (the
	// one it replaces); check makes sure they end as they were.
	mayRename []string
}

// stepCalls lists, for each step of a successful run, the distinct methods
// it called, in order.
type stepCalls struct {
	steps   []string
	methods map[string][]string
}

func injected() types.BaseMethodFault {
	return &types.SystemError{
		RuntimeFault: types.RuntimeFault{MethodFault: types.MethodFault{FaultMessage: []types.LocalizableMessage{{Key: "imgbuild.test", Message: "fault injected by the test"}}}},
		Reason:       "fault injected by the test",
	}
}

// matrixStats counts what the matrix tried, for the report.
var matrixStats struct {
	sync.Mutex
	faults, cancels, leaked int
}

func runMatrix(t *testing.T, e *env, sc scenario) {
	e.sim.SetGuest(sc.guest)
	run0 := 0
	// The successful run, recording the calls of each step.
	var sc0 stepCalls
	sc0.methods = map[string][]string{}
	var mu sync.Mutex
	e.sim.ClearRules()
	j, rec := e.job(sc.def, "web", sc.kw(run0), shell("echo provisioned"))
	// Attribute calls to steps by marking the call log at each step start.
	marks := map[string]int{}
	cleanupMark := -1
	rec.OnEvent(func(ev event.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch ev.Type {
		case event.StepStarted:
			sc0.steps = append(sc0.steps, ev.Step)
			marks[ev.Step] = len(e.sim.Calls())
		case event.CleanupStarted:
			if cleanupMark < 0 {
				cleanupMark = len(e.sim.Calls())
			}
		}
	})
	_, err := run(context.Background(), sc.def, j, false)
	must(t, rec, err)
	calls := e.sim.Calls()
	// The build's own session is the one its placement check ran in; other
	// sessions are vCenter's own (the vAPI's internal client).
	buildSession := calls[marks["check placement"]].Session
	for i, s := range sc0.steps {
		// A step's calls are those until the next step starts, or the
		// first cleanup: faults in cleanups are tested on their own.
		end := cleanupMark
		if i+1 < len(sc0.steps) {
			end = marks[sc0.steps[i+1]]
		}
		seen := map[string]bool{}
		var real, plumb []string
		for _, c := range calls[marks[s]:end] {
			if seen[c.Method] {
				continue
			}
			if c.Session != buildSession && (c.Method == "Login" || c.Method == "Logout") && s != "connect to vCenter" {
				continue // vCenter's own sessions come and go
			}
			seen[c.Method] = true
			if plumbing[c.Method] || strings.HasPrefix(c.Method, "GET /rest") || strings.HasPrefix(c.Method, "GET /api") {
				plumb = append(plumb, c.Method)
			} else {
				real = append(real, c.Method)
			}
		}
		if len(real) == 0 && len(plumb) > 0 {
			real = plumb[:1]
		}
		sc0.methods[s] = real
	}
	t.Logf("steps and the methods they call: %v", sc0.methods)

	attempt := func(t *testing.T, i int, arm func(step string, cancel context.CancelFunc), wantErr string, change func(map[string]any), prov *value.Object) {
		t.Helper()
		e.sim.ClearRules()
		before := e.sim.VMs(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		kw := sc.kw(i)
		if change != nil {
			change(kw)
		}
		if prov == nil {
			prov = shell("echo provisioned")
		}
		j, rec := e.job(sc.def, "web", kw, prov)
		rec.OnEvent(func(ev event.Event) {
			if ev.Type == event.StepStarted {
				arm(ev.Step, cancel)
			}
		})
		_, err := run(ctx, sc.def, j, false)
		if err == nil {
			t.Fatalf("the build succeeded; events:\n%s", rec.JSON())
		}
		if !strings.Contains(err.Error(), wantErr) {
			t.Errorf("error %q does not say %q", err, wantErr)
		}
		var ce interface{ Unwrap() []error }
		if errors.As(err, &ce) && strings.Contains(err.Error(), "cleanup failed") {
			t.Errorf("a cleanup failed: %v", err)
		}
		left := vcsimtest.New(before, e.sim.VMs(t))
		matrixStats.Lock()
		matrixStats.leaked += len(left)
		matrixStats.Unlock()
		e.noLeftovers(t, before, sc.mayRename...)
		if dir := sc.out(i); dir != "" {
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				var names []string
				for _, en := range entries {
					names = append(names, en.Name())
				}
				t.Errorf("export files left in %s: %v", dir, names)
			}
		}
		if sc.check != nil {
			sc.check(t)
		}
	}

	n := 0
	// one runs the matrix's next case, named name and counted in *kind.
	one := func(name string, kind *int, body func(t *testing.T, i int)) {
		n++
		i := n
		t.Run(name, func(t *testing.T) {
			matrixStats.Lock()
			*kind++
			matrixStats.Unlock()
			body(t, i)
		})
	}
	for _, s := range sc0.steps {
		for _, m := range sc0.methods[s] {
			s, m := s, m
			one(fmt.Sprintf("fault/%s/%s", s, m), &matrixStats.faults, func(t *testing.T, i int) {
				attempt(t, i, func(step string, _ context.CancelFunc) {
					if step == s {
						e.sim.FailCall(m, 1, injected())
					}
				}, s+": ", nil, nil)
			})
		}
		// Steps that make no vSphere call fail their own way.
		switch s {
		case "connect via SSH":
			one("fault/connect via SSH/no SSH server", &matrixStats.faults, func(t *testing.T, i int) {
				attempt(t, i, func(string, context.CancelFunc) {}, "connect via SSH: no SSH server answered", func(kw map[string]any) {
					kw["ssh_port"], kw["ssh_timeout"] = closedPort(t), "1s"
				}, nil)
			})
		case "provision":
			one("fault/provision/exit 3", &matrixStats.faults, func(t *testing.T, i int) {
				attempt(t, i, func(string, context.CancelFunc) {}, "provision: provisioner 1/1: shell", nil, shell("exit 3"))
			})
		}
		s := s
		one(fmt.Sprintf("cancel at start/%s", s), &matrixStats.cancels, func(t *testing.T, i int) {
			attempt(t, i, func(step string, cancel context.CancelFunc) {
				if step == s {
					cancel()
				}
			}, "context canceled", nil, nil)
		})
		if ms := sc0.methods[s]; len(ms) > 0 && !plumbing[ms[0]] {
			m := ms[0]
			one(fmt.Sprintf("cancel during/%s/%s", s, m), &matrixStats.cancels, func(t *testing.T, i int) {
				attempt(t, i, func(step string, cancel context.CancelFunc) {
					if step == s {
						e.sim.OnCall(m, 1, cancel)
					}
				}, "context canceled", nil, nil)
			})
		}
	}
}

func TestFaultsAndCancelsAtEveryStepOfACloneLeaveNothing(t *testing.T) {
	testkit.SkipIfShort(t, "the matrix runs the build about a hundred times")
	e := newEnv(t)
	// An existing VM the builds replace (force): a failed build must leave
	// it as it was.
	j, rec := e.job(CloneDef(), "old", e.cloneKW(map[string]any{"vm_name": "web", "shutdown_command": "touch " + e.poweroff}))
	_, err := run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
	outs := "out"
	var current types.ManagedObjectReference
	readCurrent := func(t *testing.T) types.ManagedObjectReference {
		for ref, name := range e.sim.VMs(t) {
			if name == "web" {
				return ref
			}
		}
		t.Fatalf("no VM named web")
		return types.ManagedObjectReference{}
	}
	sc := scenario{
		def:   CloneDef(),
		guest: vcsimtest.Guest{Tools: true, AuthorizedKey: func(line string) { e.ssh.AddAuthorizedKey(t, line) }, PowerOffFile: e.poweroff},
		kw: func(i int) map[string]any {
			if i > 0 {
				current = readCurrent(t)
			}
			return e.cloneKW(map[string]any{
				"vm_name":             "web",
				"force":               true,
				"CPUs":                2,
				"RAM":                 1024,
				"notes":               fmt.Sprintf("run %d", i),
				"shutdown_command":    "touch " + e.poweroff,
				"create_snapshot":     true,
				"convert_to_template": true,
				"export":              map[string]any{"output_directory": filepath.Join(outs, fmt.Sprint(i))},
				"content_library_destination": map[string]any{
					"library": vcsimtest.Library, "name": fmt.Sprintf("web-%d", i),
				},
			})
		},
		out:       func(i int) string { return filepath.Join(e.ws, outs, fmt.Sprint(i)) },
		mayRename: []string{"web"},
		check: func(t *testing.T) {
			if now := readCurrent(t); now != current {
				t.Errorf("the VM named web is %s now, was %s: a failed build replaced it", now, current)
			}
			items := e.sim.LibraryItems(t)
			for name := range items {
				if name != "web-0" {
					t.Errorf("library item %s left", name)
				}
			}
		},
	}
	runMatrix(t, e, sc)
	t.Cleanup(func() { reportMatrix(t) })
}

func TestFaultsAndCancelsAtEveryStepOfAnISOBuildLeaveNothing(t *testing.T) {
	testkit.SkipIfShort(t, "the matrix runs the build about a hundred times")
	e := newEnv(t)
	iso := filepath.Join(e.ws, "installer.iso")
	data := []byte(strings.Repeat("an installer image ", 4096))
	if err := os.WriteFile(iso, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	outs := "out"
	sc := scenario{
		def:   ISODef(),
		guest: vcsimtest.Guest{Tools: true, Installer: true, IP: "127.0.0.1", AuthorizedKey: func(line string) { e.ssh.AddAuthorizedKey(t, line) }},
		kw: func(i int) map[string]any {
			m := e.base()
			m["vm_name"] = fmt.Sprintf("iso-%d", i)
			m["guest_os_type"] = "debian12_64Guest"
			m["storage"] = []any{map[string]any{"disk_size": 8192}}
			m["network_adapters"] = []any{map[string]any{"network": "VM Network"}}
			m["iso_paths"] = []string{vcsimtest.ISOPath}
			m["iso_url"] = "installer.iso"
			m["iso_checksum"] = fmt.Sprintf("sha256:%x", sum)
			m["http_content"] = map[string]string{"/preseed.cfg": "d-i passwd/root-login boolean true\n"}
			m["http_ip"] = "127.0.0.1"
			m["boot_wait"] = "0s"
			m["boot_command"] = []string{"<esc><wait0s>", "auto url={http_url}/preseed.cfg<enter>"}
			m["convert_to_template"] = true
			m["export"] = map[string]any{"output_directory": filepath.Join(outs, fmt.Sprint(i)), "format": "ova"}
			m["content_library_destination"] = map[string]any{"library": vcsimtest.Library, "ovf": true}
			return m
		},
		out: func(i int) string { return filepath.Join(e.ws, outs, fmt.Sprint(i)) },
		check: func(t *testing.T) {
			for name := range e.sim.LibraryItems(t) {
				if name != "iso-0" {
					t.Errorf("library item %s left", name)
				}
			}
		},
	}
	runMatrix(t, e, sc)
	t.Cleanup(func() { reportMatrix(t) })
}

func reportMatrix(t *testing.T) {
	matrixStats.Lock()
	defer matrixStats.Unlock()
	t.Logf("fault/cancel matrix so far: %d faults and %d cancels tried, %d VMs left by the build", matrixStats.faults, matrixStats.cancels, matrixStats.leaked)
}
