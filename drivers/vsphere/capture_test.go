package vsphere

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/ovf"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/drivers/vsphere/vcsimtest"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// verifyManifest checks every line of an OVF manifest against the files in
// dir and returns the names it covers.
func verifyManifest(t *testing.T, dir, mf string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, mf))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^SHA256\((.+)\)= ([0-9a-f]{64})$`)
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("manifest line %q", sc.Text())
		}
		data, err := os.ReadFile(filepath.Join(dir, m[1]))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != m[2] {
			t.Errorf("%s: manifest says %s, the file's sha256 is %x", m[1], m[2], sum)
		}
		names = append(names, m[1])
	}
	return names
}

func TestExportWritesAnOVFItsDisksAndAManifestThatVerifies(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot(t)
	out := filepath.Join(e.ws, "out", "web")
	j, rec := e.job(CloneDef(), "web", e.cloneKW(map[string]any{
		"shutdown_command": "touch " + e.poweroff,
		"export":           map[string]any{"output_directory": "out/web"},
		"destroy":          true,
	}))
	art, err := run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
	want := []string{"out/web/web.ovf", "out/web/web.mf", "out/web/web-disk-0.vmdk"}
	if strings.Join(art.Files, " ") != strings.Join(want, " ") || art.ID != "out/web" {
		t.Errorf("artifact files %v, id %s; want %v", art.Files, art.ID, want)
	}
	if got := art.Fields["export_files"].([]string); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("export_files %v", got)
	}
	names := verifyManifest(t, out, "web.mf")
	sort.Strings(names)
	if strings.Join(names, " ") != "web-disk-0.vmdk web.ovf" {
		t.Errorf("manifest covers %v", names)
	}
	data, err := os.ReadFile(filepath.Join(out, "web.ovf"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := ovf.Unmarshal(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("the descriptor does not parse: %v", err)
	}
	if len(env.References) != 1 || env.References[0].Href != "web-disk-0.vmdk" {
		t.Errorf("descriptor references %+v", env.References)
	}
	fi, _ := os.Stat(filepath.Join(out, "web-disk-0.vmdk"))
	if fi == nil || env.References[0].Size != uint(fi.Size()) {
		t.Errorf("descriptor gives the disk's size as %d, the file has %v", env.References[0].Size, fi)
	}
	var bytes bool
	for _, p := range rec.Of("progress") {
		bytes = bytes || (p.Message == "export web-disk-0.vmdk" && p.Unit == "bytes" && p.Done == fi.Size())
	}
	if !bytes {
		t.Errorf("no export progress in bytes")
	}
	// destroy = True: the VM is gone, the files stay.
	e.noLeftovers(t, before)
	if entries, _ := os.ReadDir(out); len(entries) != 3 {
		t.Errorf("output directory holds %d entries, want 3 (no scratch directory)", len(entries))
	}

	// Exporting again into the same directory: with a file imgbuild did
	// not make in it, that is refused before anything is made, force or
	// not.
	must(t, rec, os.WriteFile(filepath.Join(out, "notes.txt"), []byte("mine"), 0o644))
	j, _ = e.job(CloneDef(), "web", e.cloneKW(map[string]any{"shutdown_command": "touch " + e.poweroff, "export": map[string]any{"output_directory": "out/web", "force": true}}))
	_, err = run(context.Background(), CloneDef(), j, false)
	if want := "check placement: export: out/web holds out/web/notes.txt, which imgbuild did not make: move it away or choose another output_directory (force replaces only what imgbuild made)"; err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
	e.noLeftovers(t, before)
	// Without it, the build's own earlier export is replaced.
	must(t, rec, os.Remove(filepath.Join(out, "notes.txt")))
	j, rec = e.job(CloneDef(), "web", e.cloneKW(map[string]any{"shutdown_command": "touch " + e.poweroff, "export": map[string]any{"output_directory": "out/web"}, "destroy": true}))
	_, err = run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
	if entries, _ := os.ReadDir(filepath.Join(e.ws, "out")); len(entries) != 1 {
		t.Errorf("out/ holds %v, want web alone", entries)
	}
	e.noLeftovers(t, before)
}

func TestExportOVAPacksTheDescriptorFirst(t *testing.T) {
	e := newEnv(t)
	e.sim.SetGuest(vcsimtest.Guest{Tools: true, AuthorizedKey: func(line string) { e.ssh.AddAuthorizedKey(t, line) }})
	j, rec := e.job(CloneDef(), "web", e.cloneKW(map[string]any{
		"convert_to_template": true,
		"export":              map[string]any{"output_directory": "out/ova", "format": "ova", "name": "appliance"},
	}))
	art, err := run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
	ova := filepath.Join(e.ws, "out/ova/appliance.ova")
	if len(art.Files) != 1 || art.Files[0] != "out/ova/appliance.ova" {
		t.Errorf("files %v", art.Files)
	}
	dir := t.TempDir()
	var order []string
	testkit.TarEntries(t, ova, func(h *tar.Header, r io.Reader) {
		order = append(order, h.Name)
		w, _ := os.Create(filepath.Join(dir, h.Name))
		io.Copy(w, r)
		w.Close()
	})
	if strings.Join(order, " ") != "appliance.ovf appliance.mf appliance-disk-0.vmdk" {
		t.Errorf("tar order %v", order)
	}
	verifyManifest(t, dir, "appliance.mf")
	// The template stays (convert_to_template), next to its export.
	if vm := e.sim.VM(t, "/DC0/vm/web"); vm == nil || !vm.Config.Template {
		t.Errorf("no template /DC0/vm/web")
	}
}

func TestContentLibraryImport(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot(t)
	// As an OVF package.
	j, rec := e.job(CloneDef(), "web", e.cloneKW(map[string]any{
		"vm_name": "web-ovf", "shutdown_command": "touch " + e.poweroff,
		"content_library_destination": map[string]any{"library": vcsimtest.Library, "ovf": true, "description": "web server"},
		"destroy":                     true,
	}))
	art, err := run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
	if art.Fields["library_item"] == "" || art.ID != "library images: web-ovf" {
		t.Errorf("artifact %+v", art)
	}
	// As a VM template (VMTX), under a name of its own, keeping the VM.
	j, rec = e.job(CloneDef(), "web", e.cloneKW(map[string]any{
		"vm_name": "web-vmtx", "shutdown_command": "touch " + e.poweroff,
		"content_library_destination": map[string]any{"library": vcsimtest.Library, "name": "web-template"},
	}))
	_, err = run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
	items := e.sim.LibraryItems(t)
	if items["web-ovf"] != "ovf" || items["web-template"] != "vm-template" || len(items) != 2 {
		t.Errorf("library items %v", items)
	}
	if e.sim.VM(t, "/DC0/vm/web-ovf") != nil {
		t.Errorf("destroy = True left the VM")
	}
	if e.sim.VM(t, "/DC0/vm/web-vmtx") == nil {
		t.Errorf("the VM was not kept")
	}
	// The name is taken now: refused before anything is made.
	before = e.snapshot(t)
	j, _ = e.job(CloneDef(), "web", e.cloneKW(map[string]any{
		"vm_name": "web-2", "content_library_destination": map[string]any{"library": vcsimtest.Library, "name": "web-template"},
	}))
	_, err = run(context.Background(), CloneDef(), j, false)
	want := `check placement: content library images already has an item named "web-template": choose another name in content_library_destination, or delete that item`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
	e.noLeftovers(t, before)
}

func TestLinkedCloneOfATemplateSnapshot(t *testing.T) {
	e := newEnv(t)
	j, rec := e.job(CloneDef(), "web", e.cloneKW(map[string]any{"linked_clone": true, "shutdown_command": "touch " + e.poweroff, "create_snapshot": true}))
	_, err := run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
	var spec *types.VirtualMachineCloneSpec
	for _, c := range e.sim.Calls() {
		if req, ok := c.Body.(*types.CloneVM_Task); ok && req.Name == "web" {
			spec = &req.Spec
		}
	}
	if spec == nil {
		t.Fatal("no CloneVM_Task recorded")
	}
	tmpl := e.sim.VM(t, "/DC0/vm/"+vcsimtest.Template)
	if spec.Location.DiskMoveType != string(types.VirtualMachineRelocateDiskMoveOptionsCreateNewChildDiskBacking) ||
		spec.Snapshot == nil || *spec.Snapshot != *tmpl.Snapshot.CurrentSnapshot {
		t.Errorf("clone spec: disk move %q, snapshot %v; want a child disk of %v", spec.Location.DiskMoveType, spec.Snapshot, tmpl.Snapshot.CurrentSnapshot)
	}
	if strings.Contains(messages(rec), "(full clone)") || !strings.Contains(messages(rec), "(linked clone)") {
		t.Errorf("messages:\n%s", messages(rec))
	}
	// create_snapshot left a snapshot for the next linked clone.
	vm := e.sim.VM(t, "/DC0/vm/web")
	if vm.Snapshot == nil || len(vm.Snapshot.RootSnapshotList) != 1 || vm.Snapshot.RootSnapshotList[0].Name != "imgbuild" {
		t.Errorf("snapshots %+v", vm.Snapshot)
	}
	// A linked clone of that VM (a graph of builds: base, then web).
	j, rec = e.job(CloneDef(), "web2", e.cloneKW(map[string]any{"template": "web", "vm_name": "web2", "linked_clone": true, "shutdown_command": "touch " + e.poweroff}))
	_, err = run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
}

func TestForceReplacesTheOldVMOnlyOnceTheBuildSucceeded(t *testing.T) {
	e := newEnv(t)
	kw := func(extra map[string]any) map[string]any {
		m := map[string]any{"vm_name": "web", "force": true, "shutdown_command": "touch " + e.poweroff, "convert_to_template": true}
		for k, v := range extra {
			m[k] = v
		}
		return e.cloneKW(m)
	}
	j, rec := e.job(CloneDef(), "web", kw(nil))
	_, err := run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
	old := e.sim.VM(t, "/DC0/vm/web")

	// A failed build leaves the old template as it was.
	before := e.snapshot(t)
	j, _ = e.job(CloneDef(), "web", kw(nil), shell("exit 7"))
	if _, err = run(context.Background(), CloneDef(), j, false); err == nil {
		t.Fatal("the build succeeded")
	}
	e.noLeftovers(t, before)
	if now := e.sim.VM(t, "/DC0/vm/web"); now == nil || now.Self != old.Self {
		t.Errorf("the old template was replaced by a failed build")
	}
	// So does a post-processor that fails after the replacement: the
	// names are put back.
	j, rec = e.job(CloneDef(), "web", kw(nil))
	_, err = run(context.Background(), CloneDef(), j, true)
	must(t, rec, err)
	e.noLeftovers(t, before, "web")
	if now := e.sim.VM(t, "/DC0/vm/web"); now == nil || now.Self != old.Self {
		t.Errorf("the old template was replaced by a build whose post-processor failed")
	}
	if !strings.Contains(messages(rec), "put /DC0/vm/web back") {
		t.Errorf("messages:\n%s", messages(rec))
	}
	// A successful build replaces it.
	j, rec = e.job(CloneDef(), "web", kw(nil))
	art, err := run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
	now := e.sim.VM(t, "/DC0/vm/web")
	if now == nil || now.Self == old.Self || art.ID != "/DC0/vm/web" || art.Fields["moref"] != now.Self.Value {
		t.Errorf("not replaced: now %v, artifact %+v", now, art)
	}
	if n := vcsimtest.New(before, e.sim.VMs(t)); len(n) != 1 {
		t.Errorf("VMs made: %v, want only the new template", n)
	}
	for _, name := range e.sim.VMs(t) {
		if strings.Contains(name, "imgbuild") {
			t.Errorf("temporary name left: %s", name)
		}
	}
	// A powered-on VM is not replaced.
	j, _ = e.job(CloneDef(), "web", e.cloneKW(map[string]any{"vm_name": "DC0_H0_VM0", "force": true, "shutdown_command": "touch " + e.poweroff}))
	before = e.snapshot(t)
	_, err = run(context.Background(), CloneDef(), j, false)
	if want := "replace existing VM: /DC0/vm/DC0_H0_VM0 is poweredOn: it may be in use, so it is not replaced; power it off and run the build again"; err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
	e.noLeftovers(t, before)
}

func TestAPostProcessorFailureRemovesTheTemplate(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot(t)
	out := filepath.Join(e.ws, "out/web")
	j, rec := e.job(CloneDef(), "web", e.cloneKW(map[string]any{
		"shutdown_command": "touch " + e.poweroff, "convert_to_template": true,
		"export":                      map[string]any{"output_directory": "out/web"},
		"content_library_destination": map[string]any{"library": vcsimtest.Library, "ovf": true},
	}))
	_, err := run(context.Background(), CloneDef(), j, true)
	must(t, rec, err)
	e.noLeftovers(t, before)
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("export files left: %d", len(entries))
	}
	if items := e.sim.LibraryItems(t); len(items) != 0 {
		t.Errorf("library items left: %v", items)
	}
}

func TestAFailedCleanupListsWhatIsLeft(t *testing.T) {
	e := newEnv(t)
	j, _ := e.job(CloneDef(), "web", e.cloneKW(nil), shell("exit 1"))
	e.sim.OnCall("PowerOnVM_Task", 1, func() { e.sim.FailCall("Destroy_Task", 1, injected()) })
	_, err := run(context.Background(), CloneDef(), j, false)
	if err == nil || !strings.Contains(err.Error(), "provision: provisioner 1/1: shell") ||
		!strings.Contains(err.Error(), "cleanup failed: clone template: removing /DC0/vm/web: fault injected by the test (SystemError); may be left: VM /DC0/vm/web (vm-") {
		t.Errorf("error: %v", err)
	}
}

func TestSSHHostSkipsTheIPWaitAndToolsShutTheGuestDown(t *testing.T) {
	e := newEnv(t)
	j, rec := e.job(CloneDef(), "web", e.cloneKW(map[string]any{"customize": nil, "ssh_host": "127.0.0.1", "template": vcsimtest.FolderTemplate, "folder": "templates"}))
	_, err := run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
	steps := strings.Join(rec.Steps(""), ", ")
	if strings.Contains(steps, "wait for IP") || strings.Contains(steps, "customize") {
		t.Errorf("steps: %s", steps)
	}
	if !strings.Contains(messages(rec), "shutting down /DC0/vm/templates/web through VMware Tools") {
		t.Errorf("messages:\n%s", messages(rec))
	}
	if vm := e.sim.VM(t, "/DC0/vm/templates/web"); vm == nil || vm.Config.Template || vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
		t.Errorf("want a powered-off VM /DC0/vm/templates/web")
	}
}

func TestTheSessionIsKeptAliveThroughLongWaits(t *testing.T) {
	e := newEnv(t)
	old := keepAliveInterval
	keepAliveInterval = 100 * time.Millisecond
	t.Cleanup(func() { keepAliveInterval = old })
	e.sim.SetSessionTimeout(t, 300*time.Millisecond)
	// The build waits 1.5s for the address to settle, five session
	// timeouts, then goes on using its session.
	j, rec := e.job(CloneDef(), "web", e.cloneKW(map[string]any{"ip_settle_timeout": "1500ms", "shutdown_command": "touch " + e.poweroff}))
	_, err := run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
	n := 0
	for _, c := range e.sim.Calls() {
		if c.Method == "CurrentTime" {
			n++
		}
	}
	if n < 5 {
		t.Errorf("%d keepalive calls during the build", n)
	}
}

func TestAHardStopListsWhatTheBuildHasMadeSoFar(t *testing.T) {
	e := newEnv(t)
	j, rec := e.job(CloneDef(), "web", e.cloneKW(map[string]any{"shutdown_command": "touch " + e.poweroff}))
	tracker := step.NewTracker()
	j.Steps.Tracker = tracker
	var pending []string
	rec.OnEvent(func(ev event.Event) {
		if ev.Type == event.StepStarted && ev.Step == "provision" {
			pending = tracker.Pending()
		}
	})
	_, err := run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
	got := strings.Join(pending, "\n")
	for _, want := range []string{
		"web: a session on vCenter " + e.sim.URL.String() + " (it expires by itself)",
		"web: VM /DC0/vm/web (vm-",
		"web: VM /DC0/vm/web may be left powered on",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("pending during provisioning:\n%s\nlacks %q", got, want)
		}
	}
}

func TestRunForceReplacesTheVMOfTheSameName(t *testing.T) {
	e := newEnv(t)
	kw := e.cloneKW(map[string]any{"vm_name": "web", "shutdown_command": "touch " + e.poweroff, "convert_to_template": true})
	j, rec := e.job(CloneDef(), "web", kw)
	_, err := run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
	old := e.sim.VM(t, "/DC0/vm/web")
	// Without force = True, run --force (Job.Force) replaces it.
	j, rec = e.job(CloneDef(), "web", kw)
	j.Force = true
	_, err = run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
	if now := e.sim.VM(t, "/DC0/vm/web"); now == nil || now.Self == old.Self {
		t.Errorf("not replaced: now %v", now)
	}
}
