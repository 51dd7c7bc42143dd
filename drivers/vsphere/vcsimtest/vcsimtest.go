// Package vcsimtest runs govmomi's vCenter simulator (vcsim, the VPX
// model, with the vAPI endpoints for content libraries) in process for the
// vsphere driver's tests: the real SOAP and REST protocols against a real
// inventory, never a mock of our own client.
//
// Where vcsim lacks an operation a build uses, the harness extends the
// simulator the way govmomi's simulator/example_extend_test.go shows: it
// wraps the managed object and registers the wrapper in the model.
//
//   - VirtualMachine.ExportVm: an export lease (HttpNfcLease) whose disks
//     are served over the simulator's own HTTP server.
//   - OvfManager.CreateDescriptor: an OVF envelope describing the VM and
//     the files the client downloaded.
//   - VirtualMachine.PutUsbScanCodes: the keys are decoded and recorded
//     (Typed), as a console would show them.
//
// It also plays the guest, as far as vSphere can see one (Guest): once a VM
// powers on, VMware Tools run, cloud-init installs the keys found in
// guestinfo.userdata, the guest reports an address, and it halts when its
// shutdown command ran. An installer guest fetches the URLs typed at its
// boot prompt and only reports an address after the boot command.
//
// Every SOAP call is seen by the harness (Registry.Handler): tests inject
// faults at the n-th call of a method, cancel a build when a call arrives,
// and check that a build changed no VM it did not create (Touched).
//
// The package knows nothing of builds, Starlark or the driver's code.
//
// vcsimtest.go is over 500 lines: it is one extension of govmomi's simulator
// (fault rules, the guest's behaviour, export leases, the OVF manager vcsim
// lacks) whose parts share the Sim's state.
package vcsimtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/sim25"
	"github.com/vmware/govmomi/vapi/library"
	"github.com/vmware/govmomi/vapi/rest"
	_ "github.com/vmware/govmomi/vapi/simulator" // registers the vAPI endpoints
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/engine/retry"
)

// Inventory names the harness adds to the VPX model (DC0, cluster DC0_C0
// with hosts DC0_C0_H0..2, standalone host DC0_H0, datastore LocalDS_0,
// networks "VM Network" and DC0_DVPG0, VMs DC0_*_VM0/1).
const (
	Username = "administrator@vsphere.local"
	Password = "Sim-Pass-42"

	Template       = "debian-12"        // a template in /DC0/vm, with snapshot "base"
	FolderTemplate = "templates/ubuntu" // a template in the folder /DC0/vm/templates
	Library        = "images"           // a local content library on LocalDS_0
	ISOPath        = "[LocalDS_0] iso/debian-12.iso"
)

// Guest is how the simulated guest of every VM the build powers on
// behaves.
type Guest struct {
	// Tools: VMware Tools run once the guest booted.
	Tools bool
	// IP is the address the guest reports once booted (once the boot
	// command was typed, for an Installer); "" reports none. A guest
	// customization with a fixed address reports that one (vcsim does).
	IP string
	// Installer: the guest is an installer at a boot prompt; it fetches
	// the http:// URLs typed at it and boots the installed system (and
	// reports IP) once a boot command ending in <enter> was typed. A clone
	// of a VM installed so (or of its clone) has the installed system on
	// its disks: it boots it and reports IP once powered on.
	Installer bool
	// AuthorizedKey receives each key cloud-init would authorize from
	// guestinfo.userdata.
	AuthorizedKey func(line string)
	// PowerOffFile: when this file exists, the guest halts (the VM powers
	// off) and the file is removed. A shutdown_command that creates it
	// plays a real shutdown.
	PowerOffFile string
}

// Sim is a running simulator.
type Sim struct {
	// URL is the SDK endpoint builds connect to, without user information:
	// a proxy in front of vcsim that records the vAPI (REST) and file
	// transfer requests and can fail them (the SOAP calls are seen inside
	// vcsim).
	URL    *url.URL
	proxy  *httptest.Server
	Model  *simulator.Model
	Server *simulator.Server
	// Client is the harness's own session; its calls are not recorded.
	Client *govmomi.Client
	Finder *find.Finder

	t          testing.TB
	harnessKey string

	mu        sync.Mutex
	guest     Guest
	calls     []Call
	faults    []*rule
	cancels   []*rule
	typed     map[string]string // VM name → what was typed
	fetched   map[string]string // URL → body fetched by an installer
	exports   map[string]*exportLease
	booted    map[string]bool // VM name → its disks hold an installed system (Installer)
	destroyMu sync.Mutex      // one destroy at a time (see serializeDestroy)
	stopping  chan struct{}
	wg        sync.WaitGroup
}

// Call is one SOAP call a client other than the harness made.
type Call struct {
	Method string
	Object types.ManagedObjectReference
	// Body is the request (*types.CloneVM_Task, ...).
	Body any
	// Session is the caller's session key, "" before login.
	Session string
}

type rule struct {
	method string
	nth    int // 1-based among the calls of method
	seen   int
	fire   func()
	fault  types.BaseMethodFault
	fired  bool
}

// Start starts a simulator for t and stops it when t ends.
func Start(t testing.TB) *Sim {
	t.Helper()
	m := simulator.VPX()
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	s := &Sim{Model: m, t: t, typed: map[string]string{}, fetched: map[string]string{}, exports: map[string]*exportLease{}, booted: map[string]bool{}, stopping: make(chan struct{})}
	m.Service.TLS = new(tls.Config)
	m.Service.RegisterEndpoints = true
	m.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(Username, Password)}
	m.Service.HandleFunc("/imgbuild-export/", s.serveExport)
	m.Map().Handler = s.handle
	s.Server = m.Service.NewServer()
	direct := *s.Server.URL
	direct.User = nil
	s.proxy = s.startProxy(&direct)
	u := direct
	u.Host = strings.TrimPrefix(s.proxy.URL, "https://")
	s.URL = &u
	t.Cleanup(func() {
		close(s.stopping)
		s.wg.Wait()
		s.proxy.Close()
		s.Server.Close()
		m.Remove()
	})

	ctx := context.Background()
	au := direct
	au.User = url.UserPassword(Username, Password)
	c, err := govmomi.NewClient(ctx, &au, true)
	if err != nil {
		t.Fatal(err)
	}
	s.Client = c
	us, err := c.SessionManager.UserSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.harnessKey = us.Key
	s.Finder = find.NewFinder(c.Client, false)
	dc, err := s.Finder.Datacenter(ctx, "DC0")
	if err != nil {
		t.Fatal(err)
	}
	s.Finder.SetDatacenter(dc)

	// vcsim has no OvfManager.CreateDescriptor: wrap the manager.
	ovfm := m.Map().Get(*c.ServiceContent.OvfManager).(*simulator.OvfManager)
	m.Map().Put(&ovfManager{OvfManager: ovfm})

	s.makeTemplate(ctx, "", Template)
	s.makeTemplate(ctx, "templates", path.Base(FolderTemplate))
	s.makeLibrary(ctx)
	s.uploadISO(ctx)
	return s
}

// SetGuest sets how guests behave from now on.
func (s *Sim) SetGuest(g Guest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.guest = g
}

// handle sees every SOAP call before vcsim dispatches it: it records it,
// injects faults, fires cancels, starts guests and wraps VMs for the
// methods vcsim lacks.
func (s *Sim) handle(ctx *simulator.Context, m *simulator.Method) (mo.Reference, types.BaseMethodFault) {
	if ctx.Session != nil && ctx.Session.Key == s.harnessKey {
		return nil, nil
	}
	s.mu.Lock()
	session := ""
	if ctx.Session != nil {
		session = ctx.Session.Key
	}
	s.calls = append(s.calls, Call{Method: m.Name, Object: m.This, Body: m.Body, Session: session})
	if r := s.hit(m.Name); r != nil && r.fault != nil {
		return nil, r.fault
	}
	if m.This.Type == "VirtualMachine" {
		switch m.Name {
		case "Destroy_Task":
			s.serializeDestroy(ctx, m.This)
		case "ExportVm":
			if vm, ok := ctx.Map.Get(m.This).(*simulator.VirtualMachine); ok {
				ctx.Map.Put(&exportVM{VirtualMachine: vm, sim: s})
			}
		case "PutUsbScanCodes":
			if vm, ok := ctx.Map.Get(m.This).(*simulator.VirtualMachine); ok {
				ctx.Map.Put(&keyboardVM{VirtualMachine: vm, sim: s})
			}
		case "PowerOnVM_Task":
			s.wg.Add(1)
			go s.boot(m.This)
		case "CloneVM_Task":
			s.inheritInstall(ctx, m.This, m.Body)
		}
	}
	return nil, nil
}

// startProxy starts the HTTPS proxy builds reach vcsim through.
func (s *Sim) startProxy(target *url.URL) *httptest.Server {
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	rp.ErrorLog = nil
	return httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/sdk" {
			if status := s.httpCall(httpMethod(r)); status != 0 {
				http.Error(w, `{"type":"com.vmware.vapi.std.errors.internal_server_error","value":{"messages":[{"default_message":"fault injected by the test","id":"imgbuild.test"}]}}`, status)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
}

// serializeDestroy makes a destroy of vm wait for the one before it to end,
// and holds the next one back until this one has ended and, when it removed
// the VM, the folder its files were in is gone. vcsim destroys a VM in a
// task that deletes the VM's folder in another task, reading the datastore
// unlocked, while a second destroy removes its VM from that datastore: a
// data race in the simulator that the race detector reports. It sees every
// destroy, the builds' and vcsim's own (a content library import destroys
// the VM it cloned), since it runs in the registry's handler.
func (s *Sim) serializeDestroy(ctx *simulator.Context, vm types.ManagedObjectReference) {
	s.destroyMu.Lock()
	folder := ""
	if v, ok := ctx.Map.Get(vm).(*simulator.VirtualMachine); ok {
		var logDir string
		ctx.WithLock(v, func() {
			if v.Config != nil {
				logDir = v.Config.Files.LogDirectory
			}
		})
		var p object.DatastorePath
		if p.FromString(logDir) {
			for _, e := range ctx.Map.All("Datastore") {
				if ds, ok := e.(*simulator.Datastore); ok {
					ctx.WithLock(ds, func() {
						if ds.Name == p.Datastore {
							folder = filepath.Join(strings.TrimPrefix(ds.Summary.Url, "file://"), p.Path)
						}
					})
				}
			}
		}
	}
	var was os.FileInfo
	if folder != "" {
		was, _ = os.Stat(folder)
	}
	// Task times come back through SOAP to the second at worst.
	since := time.Now().Add(-time.Second)
	// Not in s.wg: a build's last destroy may come while the test ends;
	// the wait ends with the simulator.
	go func() {
		defer s.destroyMu.Unlock()
		s.waitDestroyed(vm, folder, was, since)
	}()
}

// waitDestroyed waits until a destroy task of vm queued since then has
// ended and, when it removed the VM, until folder (which was was) is gone
// or is another folder of that name, a new VM's; at most a minute, so that
// a destroy vcsim never ran holds nothing back for long.
func (s *Sim) waitDestroyed(vm types.ManagedObjectReference, folder string, was os.FileInfo, since time.Time) {
	ctx := context.Background()
	pc := property.DefaultCollector(s.Client.Client)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		ended := false
		for _, t := range s.Model.Map().AllReference("Task") {
			var task mo.Task
			if err := pc.RetrieveOne(ctx, t.Reference(), []string{"info"}, &task); err != nil {
				continue
			}
			if task.Info.Entity != nil && *task.Info.Entity == vm && task.Info.DescriptionId == "VirtualMachine.destroy" &&
				!task.Info.QueueTime.Before(since) &&
				(task.Info.State == types.TaskInfoStateSuccess || task.Info.State == types.TaskInfoStateError) {
				ended = true
			}
		}
		if ended {
			_, exists := s.Model.Map().Get(vm).(*simulator.VirtualMachine)
			now, err := os.Stat(folder)
			if was == nil || exists || errors.Is(err, fs.ErrNotExist) || (err == nil && !os.SameFile(now, was)) {
				return
			}
		}
		select {
		case <-s.stopping:
			return
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// httpMethod names a non-SOAP request as Calls lists it: "POST
// /rest/vcenter/vm-template/library-items", "PUT /folder" for datastore
// files.
func httpMethod(r *http.Request) string {
	p := r.URL.Path
	for _, prefix := range []string{"/folder", "/imgbuild-export"} {
		if strings.HasPrefix(p, prefix+"/") {
			p = prefix
		}
	}
	var parts []string
	for _, seg := range strings.Split(p, "/") {
		if strings.HasPrefix(seg, "id:") || len(seg) >= 32 {
			seg = "*"
		}
		parts = append(parts, seg)
	}
	return r.Method + " " + strings.Join(parts, "/")
}

// httpCall records a non-SOAP request and returns the status to fail it
// with, or 0.
func (s *Sim) httpCall(method string) int {
	s.mu.Lock()
	s.calls = append(s.calls, Call{Method: method, Session: "http"})
	if s.hit(method) != nil {
		return http.StatusInternalServerError
	}
	return 0
}

// hit counts a call of method, just recorded with s.mu held, against the
// fault and cancel rules. It releases s.mu, runs the cancels the call
// fires and returns the fault rule it fires (the last one set, when more
// than one), or nil.
func (s *Sim) hit(method string) *rule {
	var fault *rule
	for _, r := range s.faults {
		if r.count(method) {
			fault = r
		}
	}
	var fire []func()
	for _, r := range s.cancels {
		if r.count(method) {
			fire = append(fire, r.fire)
		}
	}
	s.mu.Unlock()
	for _, f := range fire {
		f()
	}
	return fault
}

// count counts a call of method against r and says whether r fires on it.
func (r *rule) count(method string) bool {
	if r.method != method || r.fired {
		return false
	}
	r.seen++
	r.fired = r.seen == r.nth
	return r.fired
}

// FailCall makes the n-th call (from now on) of method fail with fault
// (a SOAP method), or with status 500 (a request named as Calls names it).
func (s *Sim) FailCall(method string, n int, fault types.BaseMethodFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &rule{method: method, nth: n, fault: fault})
}

// OnCall runs f when the n-th call (from now on) of method arrives, before
// vcsim handles it.
func (s *Sim) OnCall(method string, n int, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancels = append(s.cancels, &rule{method: method, nth: n, fire: f})
}

// ClearRules removes every fault and OnCall rule and forgets the calls.
func (s *Sim) ClearRules() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults, s.cancels, s.calls = nil, nil, nil
}

// Calls returns the calls recorded so far.
func (s *Sim) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// mutating are the VirtualMachine methods that change a VM.
var mutating = map[string]bool{
	"Destroy_Task": true, "PowerOnVM_Task": true, "PowerOffVM_Task": true, "ResetVM_Task": true,
	"SuspendVM_Task": true, "ReconfigVM_Task": true, "MarkAsTemplate": true, "MarkAsVirtualMachine": true,
	"Rename_Task": true, "UnregisterVM": true, "CreateSnapshot_Task": true, "CreateSnapshotEx_Task": true,
	"RemoveAllSnapshots_Task": true, "CustomizeVM_Task": true, "ShutdownGuest": true, "RebootGuest": true,
	"PutUsbScanCodes": true, "RelocateVM_Task": true, "UpgradeVM_Task": true, "SetCustomValue": true,
}

// Touched returns the VMs in before on which a call other than the
// harness's changed something: what a build must never do to a VM it did
// not create.
func (s *Sim) Touched(before map[types.ManagedObjectReference]string) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range s.Calls() {
		if c.Object.Type != "VirtualMachine" || !mutating[c.Method] {
			continue
		}
		if name, ok := before[c.Object]; ok {
			k := c.Method + " on " + name
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// VMs lists every VM and template by reference, with its inventory name.
func (s *Sim) VMs(t testing.TB) map[types.ManagedObjectReference]string {
	t.Helper()
	ctx := context.Background()
	v, err := view.NewManager(s.Client.Client).CreateContainerView(ctx, s.Client.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Destroy(ctx)
	var vms []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name"}, &vms); err != nil {
		t.Fatal(err)
	}
	out := map[types.ManagedObjectReference]string{}
	for _, vm := range vms {
		out[vm.Self] = vm.Name
	}
	return out
}

// New returns the names of the VMs in now that are not in before.
func New(before, now map[types.ManagedObjectReference]string) []string {
	var out []string
	for ref, name := range now {
		if _, ok := before[ref]; !ok {
			out = append(out, name+" ("+ref.Value+")")
		}
	}
	sort.Strings(out)
	return out
}

// VM returns the VM at an inventory path, or nil.
func (s *Sim) VM(t testing.TB, p string) *mo.VirtualMachine {
	t.Helper()
	ctx := context.Background()
	vm, err := s.Finder.VirtualMachine(ctx, p)
	if err != nil {
		return nil
	}
	var o mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), nil, &o); err != nil {
		t.Fatal(err)
	}
	return &o
}

// ExtraConfig returns a VM's advanced settings.
func ExtraConfig(vm *mo.VirtualMachine) map[string]string {
	out := map[string]string{}
	for _, ov := range vm.Config.ExtraConfig {
		if v := ov.GetOptionValue(); v != nil {
			out[v.Key] = fmt.Sprint(v.Value)
		}
	}
	return out
}

// Typed returns what was typed on a VM's keyboard, by VM name: text, with
// special keys as <enter>.
func (s *Sim) Typed(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.typed[name]
}

// Fetched returns the URLs installers fetched, with what they got.
func (s *Sim) Fetched() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, v := range s.fetched {
		out[k] = v
	}
	return out
}

// OpenLeases lists the export leases neither completed nor aborted.
func (s *Sim) OpenLeases() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, l := range s.exports {
		if !l.closed {
			out = append(out, id)
		}
	}
	return out
}

// Rest returns a logged-in vAPI client for the harness.
func (s *Sim) Rest(t testing.TB) *rest.Client {
	t.Helper()
	rc := rest.NewClient(s.Client.Client)
	if err := rc.Login(context.Background(), url.UserPassword(Username, Password)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Logout(context.Background()) })
	return rc
}

// LibraryItems lists the items of the harness's content library by name,
// with their type.
func (s *Sim) LibraryItems(t testing.TB) map[string]string {
	t.Helper()
	ctx := context.Background()
	m := library.NewManager(s.Rest(t))
	lib, err := m.GetLibraryByName(ctx, Library)
	if err != nil {
		t.Fatal(err)
	}
	items, err := m.GetLibraryItems(ctx, lib.ID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, it := range items {
		out[it.Name] = it.Type
	}
	return out
}

// DatastoreFiles lists the files and directories at the top of LocalDS_0.
func (s *Sim) DatastoreFiles(t testing.TB) []string {
	t.Helper()
	ds, err := s.Finder.Datastore(context.Background(), "LocalDS_0")
	if err != nil {
		t.Fatal(err)
	}
	var o mo.Datastore
	if err := ds.Properties(context.Background(), ds.Reference(), []string{"info"}, &o); err != nil {
		t.Fatal(err)
	}
	dir := strings.TrimPrefix(o.Info.GetDatastoreInfo().Url, "file://")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// SetSessionTimeout makes vcsim drop sessions idle for d.
func (s *Sim) SetSessionTimeout(t testing.TB, d time.Duration) {
	t.Helper()
	if err := sim25.SetSessionTimeout(context.Background(), s.Client.Client, d); err != nil {
		t.Fatal(err)
	}
}

// boot plays the guest of a VM that was asked to power on.
func (s *Sim) boot(ref types.ManagedObjectReference) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	vm := object.NewVirtualMachine(s.Client.Client, ref)
	err := vm.WaitForPowerState(ctx, types.VirtualMachinePowerStatePoweredOn)
	cancel()
	if err != nil {
		return
	}
	s.mu.Lock()
	g := s.guest
	s.mu.Unlock()
	svm, ok := s.Model.Map().Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	if g.Tools {
		s.update(svm, []types.PropertyChange{
			{Name: "guest.toolsRunningStatus", Val: string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)},
			{Name: "guest.toolsStatus", Val: types.VirtualMachineToolsStatusToolsOk},
		})
	}
	if g.AuthorizedKey != nil {
		for _, k := range cloudInitKeys(s.extraConfig(svm)) {
			g.AuthorizedKey(k)
		}
	}
	if g.IP != "" && (!g.Installer || s.installed(svm)) {
		s.reportIP(svm, g.IP)
	}
	if g.PowerOffFile != "" {
		s.watchPowerOff(vm, svm, g.PowerOffFile)
	}
}

// inheritInstall marks the clone a CloneVM_Task of src makes as installed
// when src is: the clone's disks are copies (or children) of src's.
func (s *Sim) inheritInstall(ctx *simulator.Context, src types.ManagedObjectReference, body any) {
	req, ok := body.(*types.CloneVM_Task)
	if !ok {
		return
	}
	v, ok := ctx.Map.Get(src).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	var name string
	ctx.WithLock(v, func() { name = v.Name })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.booted[name] {
		s.booted[req.Name] = true
	}
}

// installed reports whether a VM's disks hold an installed system: its
// boot command was typed, or it is a clone of such a VM.
func (s *Sim) installed(vm *simulator.VirtualMachine) bool {
	var name string
	ctx := &simulator.Context{Context: context.Background(), Map: s.Model.Map()}
	s.Model.Map().WithLock(ctx, vm, func() { name = vm.Name })
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.booted[name]
}

// running reports whether a simulated VM still exists and is powered on.
func (s *Sim) running(ref types.ManagedObjectReference) bool {
	svm, ok := s.Model.Map().Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return false
	}
	on := false
	ctx := &simulator.Context{Context: context.Background(), Map: s.Model.Map()}
	s.Model.Map().WithLock(ctx, svm, func() {
		on = svm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn
	})
	return on
}

// update applies property changes to a simulated object, as the guest's
// tools would report them.
func (s *Sim) update(obj mo.Reference, changes []types.PropertyChange) {
	ctx := &simulator.Context{Context: context.Background(), Map: s.Model.Map()}
	s.Model.Map().AtomicUpdate(ctx, obj, changes)
}

func (s *Sim) extraConfig(vm *simulator.VirtualMachine) map[string]string {
	out := map[string]string{}
	ctx := &simulator.Context{Context: context.Background(), Map: s.Model.Map()}
	s.Model.Map().WithLock(ctx, vm, func() {
		for _, ov := range vm.Config.ExtraConfig {
			if v := ov.GetOptionValue(); v != nil {
				out[v.Key] = fmt.Sprint(v.Value)
			}
		}
	})
	return out
}

// reportIP makes the guest report ip on its first adapter.
func (s *Sim) reportIP(vm *simulator.VirtualMachine, ip string) {
	ctx := &simulator.Context{Context: context.Background(), Map: s.Model.Map()}
	s.Model.Map().WithLock(ctx, vm, func() {
		nets := append([]types.GuestNicInfo(nil), vm.Guest.Net...)
		if len(nets) == 0 {
			nets = []types.GuestNicInfo{{Network: "VM Network", Connected: true}}
		}
		nets[0].IpAddress = []string{ip}
		ctx.Update(vm, []types.PropertyChange{
			{Name: "guest.net", Val: nets},
			{Name: "guest.ipAddress", Val: ip},
			{Name: "summary.guest.ipAddress", Val: ip},
		})
	})
}

var keyLineRe = regexp.MustCompile(`(?m)^\s*-\s*"?(ssh-[a-z0-9-]+ [A-Za-z0-9+/=]+[^"\n]*)"?\s*$`)

// cloudInitKeys returns the keys cloud-init would authorize from the
// guestinfo userdata.
func cloudInitKeys(ec map[string]string) []string {
	data := ec["guestinfo.userdata"]
	if ec["guestinfo.userdata.encoding"] == "base64" {
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil
		}
		data = string(b)
	}
	if !strings.HasPrefix(data, "#cloud-config") {
		return nil
	}
	var out []string
	for _, m := range keyLineRe.FindAllStringSubmatch(data, -1) {
		out = append(out, m[1])
	}
	return out
}

// watchPowerOff powers the VM off once the file appears, for as long as
// the guest runs.
func (s *Sim) watchPowerOff(vm *object.VirtualMachine, svm *simulator.VirtualMachine, file string) {
	retry.Every(s.stopping, 20*time.Millisecond, func() bool {
		if !s.running(vm.Reference()) {
			return false
		}
		if _, err := os.Stat(file); err != nil {
			return true
		}
		os.Remove(file)
		if t, err := vm.PowerOff(context.Background()); err == nil {
			_ = t.Wait(context.Background())
		}
		return false
	})
}

var urlRe = regexp.MustCompile(`http://[^\s<>"]+`)

// typedOn records keys typed on vm and plays an installer reading them.
func (s *Sim) typedOn(vm *simulator.VirtualMachine, text string) {
	s.mu.Lock()
	s.typed[vm.Name] += text
	all := s.typed[vm.Name]
	g := s.guest
	done := s.booted[vm.Name]
	s.mu.Unlock()
	if !g.Installer || done || !strings.HasSuffix(text, "<enter>") {
		return
	}
	s.mu.Lock()
	s.booted[vm.Name] = true
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for _, u := range urlRe.FindAllString(all, -1) {
			body := fetch(u)
			s.mu.Lock()
			s.fetched[u] = body
			s.mu.Unlock()
		}
		if g.IP != "" {
			s.reportIP(vm, g.IP)
		}
	}()
}

func fetch(u string) string {
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(u)
	if err != nil {
		return "error: " + err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Sprintf("status %d: %s", res.StatusCode, b)
	}
	return string(b)
}

// makeTemplate creates a template with one disk, one adapter on "VM
// Network" and a snapshot "base", in the VM folder or a subfolder.
func (s *Sim) makeTemplate(ctx context.Context, folder, name string) {
	t := s.t
	dc, _ := s.Finder.Datacenter(ctx, "DC0")
	folders, err := dc.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := folders.VmFolder
	if folder != "" {
		if f, err = folders.VmFolder.CreateFolder(ctx, folder); err != nil {
			t.Fatal(err)
		}
	}
	pool, err := s.Finder.ResourcePool(ctx, "/DC0/host/DC0_C0/Resources")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := s.Finder.Datastore(ctx, "LocalDS_0")
	if err != nil {
		t.Fatal(err)
	}
	net, err := s.Finder.Network(ctx, "VM Network")
	if err != nil {
		t.Fatal(err)
	}
	backing, _ := net.EthernetCardBackingInfo(ctx)
	var devices object.VirtualDeviceList
	scsi, _ := devices.CreateSCSIController("pvscsi")
	devices = append(devices, scsi)
	disk := devices.CreateDisk(scsi.(types.BaseVirtualController), ds.Reference(), "")
	disk.CapacityInKB = 2 * 1024 * 1024
	devices = append(devices, disk)
	nic, _ := devices.CreateEthernetCard("vmxnet3", backing)
	devices = append(devices, nic)
	changes, _ := devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	for _, ch := range changes {
		if _, ok := ch.GetVirtualDeviceConfigSpec().Device.(*types.VirtualDisk); ok {
			ch.GetVirtualDeviceConfigSpec().FileOperation = types.VirtualDeviceConfigSpecFileOperationCreate
		}
	}
	spec := types.VirtualMachineConfigSpec{
		Name: name, GuestId: "debian12_64Guest", NumCPUs: 2, MemoryMB: 2048,
		Files:        &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
		DeviceChange: changes,
	}
	task, err := f.CreateVM(ctx, spec, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vm := object.NewVirtualMachine(s.Client.Client, info.Result.(types.ManagedObjectReference))
	st, err := vm.CreateSnapshot(ctx, "base", "", false, false)
	if err == nil {
		err = st.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.MarkAsTemplate(ctx); err != nil {
		t.Fatal(err)
	}
}

func (s *Sim) makeLibrary(ctx context.Context) {
	t := s.t
	ds, err := s.Finder.Datastore(ctx, "LocalDS_0")
	if err != nil {
		t.Fatal(err)
	}
	rc := rest.NewClient(s.Client.Client)
	if err := rc.Login(ctx, url.UserPassword(Username, Password)); err != nil {
		t.Fatal(err)
	}
	defer rc.Logout(ctx)
	_, err = library.NewManager(rc).CreateLibrary(ctx, library.Library{
		Name: Library, Type: "LOCAL",
		Storage: []library.StorageBacking{{DatastoreID: ds.Reference().Value, Type: "DATASTORE"}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (s *Sim) uploadISO(ctx context.Context) {
	ds, err := s.Finder.Datastore(ctx, "LocalDS_0")
	if err != nil {
		s.t.Fatal(err)
	}
	p := strings.TrimPrefix(ISOPath, "[LocalDS_0] ")
	data := bytes.Repeat([]byte("ISO9660 "), 128)
	if err := ds.Upload(ctx, bytes.NewReader(data), p, &soap.Upload{ContentLength: int64(len(data)), Method: "PUT", Type: "application/octet-stream"}); err != nil {
		s.t.Fatal(err)
	}
}
