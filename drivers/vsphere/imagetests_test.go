package vsphere

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/drivers/post"
	"github.com/imgbuild/imgbuild/drivers/post/posttest"
	"github.com/imgbuild/imgbuild/drivers/vsphere/vcsimtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

// testedEnv is newEnv whose guests are installers that report 127.0.0.1
// (a clone of an installed VM boots the installed system and reports it
// at once: the tests' clones reach the local sshd), shut down through
// e.poweroff, and whose authorized keys are recorded.
func testedEnv(t *testing.T) (*env, func() []string) {
	e := newEnv(t)
	var mu sync.Mutex
	var keys []string
	e.sim.SetGuest(vcsimtest.Guest{Tools: true, Installer: true, IP: "127.0.0.1", PowerOffFile: e.poweroff, AuthorizedKey: func(line string) {
		mu.Lock()
		keys = append(keys, line)
		mu.Unlock()
		e.ssh.AddAuthorizedKey(t, line)
	}})
	return e, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), keys...)
	}
}

// testedStar is a description of a vsphere_iso build, base, with tests
// (its own, as baseTests) that publishes in every way vSphere can: an OVF
// export, a content library item, a template made of the VM; its snapshot
// (create_snapshot) makes its tests' clone a linked one. With web, a
// vsphere_clone of base's template with tests of its own (webTests) and no
// snapshot, whose tests' clone is a full one.
func (e *env) testedStar(baseTests, webTests string) string {
	s := e.vcStar(`
    ssh_timeout = "60s",
    ssh_handshake_attempts = 1000,`) + baseStar(fmt.Sprintf(`
    provisioners = [shell(inline = ["echo provisioned"])],
    create_snapshot = True,
    export = {"output_directory": "out/base"},
    content_library_destination = {"library": %q, "ovf": True},
    convert_to_template = True,
    tests = %s,
    post = [manifest(output = "out/base-manifest.json")],`, vcsimtest.Library, baseTests))
	if webTests != "" {
		s += fmt.Sprintf(`
vsphere_clone(
    name = "web",
    template = base.template,
    vm_name = "web-1.0",
    customize = {"network_interface": [{"ipv4_address": "127.0.0.1", "ipv4_netmask": 8}]},
    convert_to_template = True,
    tests = %s,
    post = [manifest(output = "out/web-manifest.json")],
    **vc
)
`, webTests)
	}
	return s
}

// runStar loads a description from src and runs it as imgbuild run does,
// with onError; the events go to rec.
func (e *env) runStar(t *testing.T, src string, onError step.Policy, rec *testkit.Recorder) (*description.Description, *engine.Summary) {
	t.Helper()
	d := e.loadStar(t, src)
	return d, engine.Run(context.Background(), d.Graph, e.reg, event.NewBus(rec), engine.RunOptions{Workspace: d.Root, TempDir: t.TempDir(), OnError: onError})
}

// testClones are the CloneVM_Task calls that made the tests' clones of
// vm, in order.
func (e *env) testClones(vm string) []*types.CloneVM_Task {
	var out []*types.CloneVM_Task
	for _, c := range e.sim.Calls() {
		if req, ok := c.Body.(*types.CloneVM_Task); ok && strings.HasPrefix(req.Name, vm+"-test-") {
			out = append(out, req)
		}
	}
	return out
}

// callIndex is the index in calls of the first call of method after from,
// or -1.
func callIndex(calls []vcsimtest.Call, from int, method string) int {
	for i := from + 1; i < len(calls); i++ {
		if calls[i].Method == method {
			return i
		}
	}
	return -1
}

// manifestTests reads the tests recorded in a manifest of one build.
func manifestTests(t *testing.T, path string) []post.ManifestTest {
	t.Helper()
	builds := posttest.Manifest(t, path)
	if len(builds) != 1 {
		t.Fatalf("manifest %s: %+v, want one build", path, builds)
	}
	return builds[0].Tests
}

// The tests of a vsphere_iso and of a vsphere_clone build run over SSH on a
// clone of the new VM, powered on with a key of its own: a linked clone of
// the snapshot create_snapshot took, else a full clone. The clone is
// removed once they are over; only then are the export, the content
// library item and the template made, and the post-processors run.
func TestTestsRunOnACloneOfTheNewVMAndAPassPublishesIt(t *testing.T) {
	e, keys := testedEnv(t)
	before := e.snapshot(t)
	rec := &testkit.Recorder{}
	d, sum := e.runStar(t, e.testedStar(
		`[shell(name = "the machine answers", inline = ["echo hello from the test machine"])]`,
		`[shell(name = "web answers", inline = ["echo hello from the web test machine"])]`), step.Cleanup, rec)
	if !sum.OK() {
		for _, r := range sum.Results {
			t.Errorf("%s: %s %v", r.Build, r.Status, r.Err)
		}
		t.Fatalf("events:\n%s", rec.JSON())
	}

	// The plan shows the tests.
	var plan bytes.Buffer
	if err := engine.MakePlan(d.Graph, e.reg, d.Root).WriteText(&plan); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tests (on a machine launched from the new image, before it is published):", "1. the machine answers: shell(", "1. web answers: shell("} {
		if !strings.Contains(plan.String(), want) {
			t.Errorf("the plan lacks %q:\n%s", want, plan.String())
		}
	}

	machine := "test, test machine: clone for tests, test machine: power on, test machine: wait for IP, test machine: connect via SSH, run tests"
	for build, want := range map[string]string{
		"base": "create snapshot, " + machine + ", export, import to content library, convert to template, post-processor: manifest",
		"web":  "remove build settings, " + machine + ", convert to template, post-processor: manifest",
	} {
		if steps := strings.Join(rec.Steps(build), ", "); !strings.HasSuffix(steps, want) {
			t.Errorf("%s: steps %s\nwant them to end with %s", build, steps, want)
		}
	}

	// base's tests ran on a linked clone of its snapshot, web's on a full
	// clone (web took no snapshot), each with the build's marker and a key
	// of its own under a new cloud-init instance.
	baseVM, webVM := e.sim.VM(t, "/DC0/vm/debian-base"), e.sim.VM(t, "/DC0/vm/web-1.0")
	if baseVM == nil || !baseVM.Config.Template || webVM == nil || !webVM.Config.Template {
		t.Fatalf("templates debian-base %v, web-1.0 %v", baseVM, webVM)
	}
	for vm, linked := range map[*struct {
		name string
		snap *types.ManagedObjectReference
	}]bool{{"debian-base", baseVM.Snapshot.CurrentSnapshot}: true, {"web-1.0", nil}: false} {
		clones := e.testClones(vm.name)
		if len(clones) != 1 {
			t.Fatalf("%s: %d test clones, want 1", vm.name, len(clones))
		}
		spec := clones[0].Spec
		if got := spec.Location.DiskMoveType == string(types.VirtualMachineRelocateDiskMoveOptionsCreateNewChildDiskBacking); got != linked {
			t.Errorf("%s's test clone: linked %v (disk move %q), want %v", vm.name, got, spec.Location.DiskMoveType, linked)
		}
		if linked && (spec.Snapshot == nil || *spec.Snapshot != *vm.snap) {
			t.Errorf("%s's test clone of snapshot %v, want its current snapshot %v", vm.name, spec.Snapshot, vm.snap)
		}
		ec := map[string]string{}
		for _, ov := range spec.Config.ExtraConfig {
			ec[ov.GetOptionValue().Key] = fmt.Sprint(ov.GetOptionValue().Value)
		}
		meta, _ := base64.StdEncoding.DecodeString(ec["guestinfo.metadata"])
		if ec[markerKey] == "" || !strings.Contains(ec["guestinfo.imgbuild.authorized_key"], " (tests)") || !strings.Contains(string(meta), "-test\n") {
			t.Errorf("%s's test clone's settings %v (metadata %q)", vm.name, ec, meta)
		}
	}
	for _, want := range []string{" imgbuild base (tests)", " imgbuild web (tests)"} {
		if !slices.ContainsFunc(keys(), func(k string) bool { return strings.HasSuffix(k, want) }) {
			t.Errorf("no key%s was authorized: %v", want, keys())
		}
	}

	// The clone was removed before anything was published.
	calls := e.sim.Calls()
	clone := slices.IndexFunc(calls, func(c vcsimtest.Call) bool {
		req, ok := c.Body.(*types.CloneVM_Task)
		return ok && strings.HasPrefix(req.Name, "debian-base-test-")
	})
	destroy, export, template := callIndex(calls, clone, "Destroy_Task"), callIndex(calls, clone, "ExportVm"), callIndex(calls, clone, "MarkAsTemplate")
	if clone < 0 || destroy < 0 || export < destroy || template < export {
		t.Errorf("calls: test clone %d, its removal %d, then export %d and template %d", clone, destroy, export, template)
	}
	if msgs := messages(rec); !strings.Contains(msgs, "(the tests are over)") || !strings.Contains(msgs, "for the tests (linked clone of its current snapshot)") {
		t.Errorf("messages:\n%s", msgs)
	}

	// Published: the templates, base's export and library item; the
	// manifests record the tests.
	if n := vcsimtest.New(before, e.sim.VMs(t)); len(n) != 2 || !strings.HasPrefix(n[0], "debian-base ") || !strings.HasPrefix(n[1], "web-1.0 ") {
		t.Errorf("VMs made: %v, want the two templates alone", n)
	}
	if items := e.sim.LibraryItems(t); items["debian-base"] != "ovf" || len(items) != 1 {
		t.Errorf("library items %v", items)
	}
	if files := testkit.FilesUnder(filepath.Join(e.ws, "out/base")); len(files) != 3 {
		t.Errorf("export files %v", files)
	}
	for build, want := range map[string]string{"base": "hello from the test machine", "web": "hello from the web test machine"} {
		tests := manifestTests(t, filepath.Join(e.ws, "out", build+"-manifest.json"))
		if len(tests) != 1 || tests[0].Status != "passed" || !slices.Contains(tests[0].Output, want) {
			t.Errorf("%s's manifest records the tests as %+v", build, tests)
		}
	}
}

// A failed test removes the VM and its test clone, and publishes nothing:
// no template, no content library item, no export, no manifest. The error
// names the test, and its output is in its result.
func TestAFailedTestOfTheNewVMRemovesItAndPublishesNothing(t *testing.T) {
	e, _ := testedEnv(t)
	before := e.snapshot(t)
	rec := &testkit.Recorder{}
	_, sum := e.runStar(t, e.testedStar(`[
        shell(name = "nginx answers", inline = ["echo looking for nginx", "exit 3"]),
        shell(name = "a passing one", inline = ["true"]),
    ]`, `[shell(name = "never runs", inline = ["true"])]`), step.Cleanup, rec)
	res := sum.Result("base")
	if sum.OK() || res.Status != event.Failed {
		t.Fatalf("status %s, want failed (imgbuild run exits 1)\n%s", res.Status, rec.Log())
	}
	// The clone of the template that was never made is skipped.
	if web := sum.Result("web"); web.Status != event.Skipped {
		t.Errorf("web (a clone of base's template): %s, want skipped", web.Status)
	}
	msg := res.Err.Error()
	if want := "test: run tests: 1 of 2 tests failed:\n  \"nginx answers\": inline script exited with status 3"; !strings.Contains(msg, want) {
		t.Errorf("error: %s", msg)
	}
	rec.FailedTest(t, "base", "looking for nginx", "export", "import to content library", "convert to template")
	// Count what is left, as the fault tests do.
	vms := vcsimtest.New(before, e.sim.VMs(t))
	templates := 0
	for _, c := range e.sim.Calls() {
		if c.Method == "MarkAsTemplate" {
			templates++
		}
	}
	items := e.sim.LibraryItems(t)
	exports := testkit.FilesUnder(filepath.Join(e.ws, "out"))
	t.Logf("after the failed test: %d VMs, %d templates made, %d library items, %d files in out/", len(vms), templates, len(items), len(exports))
	if len(vms)+templates+len(items)+len(exports) > 0 {
		t.Errorf("left: VMs %v, %d templates made, library items %v, files %v", vms, templates, items, exports)
	}
	if n := len(e.testClones("debian-base")); n != 1 {
		t.Errorf("%d test clones made, want 1", n)
	}
	e.noLeftovers(t, before)
}

// With --on-error=abort a failed test keeps the VM and its test clone, and
// lists them; nothing is published.
func TestOnErrorAbortKeepsAndListsTheVMWhoseTestFailed(t *testing.T) {
	e, _ := testedEnv(t)
	before := e.snapshot(t)
	rec := &testkit.Recorder{}
	_, sum := e.runStar(t, e.testedStar(`[shell(name = "fails", inline = ["exit 1"])]`, ""), step.Abort, rec)
	if s := sum.Result("base").Status; s != event.Failed {
		t.Fatalf("base: %s, want failed", s)
	}
	vms := vcsimtest.New(before, e.sim.VMs(t))
	if len(vms) != 2 || !strings.HasPrefix(vms[0], "debian-base ") || !strings.HasPrefix(vms[1], "debian-base-test-") {
		t.Fatalf("VMs kept: %v, want the VM and its test clone", vms)
	}
	var items []string
	for _, ev := range rec.Of(event.Leftover) {
		items = append(items, ev.Items...)
	}
	joined := strings.Join(items, "\n")
	for _, want := range []string{
		"VM /DC0/vm/debian-base (vm-",
		"test VM /DC0/vm/debian-base-test-",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("leftovers:\n%s\nwant %q", joined, want)
		}
	}
	if vm := e.sim.VM(t, "/DC0/vm/debian-base"); vm == nil || vm.Config.Template {
		t.Errorf("debian-base: %v, want a VM, not a template", vm)
	}
	if items := e.sim.LibraryItems(t); len(items) != 0 {
		t.Errorf("library items %v", items)
	}
	if files := testkit.FilesUnder(filepath.Join(e.ws, "out")); len(files) != 0 {
		t.Errorf("files %v", files)
	}
}
