package vsphere

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/drivers/vsphere/vcsimtest"
)

// isoKW is base plus an installer build: an ISO on the datastore and one
// uploaded from the workspace, a preseed served over HTTP and a boot
// command that points the installer at it.
func (e *env) isoKW(t *testing.T, extra map[string]any) map[string]any {
	iso := filepath.Join(e.ws, "netinst.iso")
	data := []byte(strings.Repeat("debian installer ", 8192))
	if err := os.WriteFile(iso, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m := e.base()
	m["vm_name"] = "debian-base"
	m["guest_os_type"] = "debian12_64Guest"
	m["firmware"] = "efi"
	m["CPUs"] = 2
	m["RAM"] = 2048
	m["storage"] = []any{map[string]any{"disk_size": 16384}, map[string]any{"disk_size": 1024, "thin": false}}
	m["network_adapters"] = []any{map[string]any{"network": "VM Network"}}
	m["iso_paths"] = []string{vcsimtest.ISOPath}
	m["iso_url"] = "netinst.iso"
	m["iso_checksum"] = fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	m["http_content"] = map[string]string{"/preseed.cfg": "d-i debian-installer/locale string en_US\n"}
	m["http_ip"] = "127.0.0.1"
	m["boot_wait"] = "0s"
	m["boot_command"] = []string{
		"<esc><wait0s>",
		"install auto=true priority=critical url={http_url}/preseed.cfg hostname={vm_name}<enter>",
	}
	return with(m, extra)
}

func TestISOInstallsBootsTypesTheBootCommandAndProvisions(t *testing.T) {
	e := newEnv(t)
	e.sim.SetGuest(vcsimtest.Guest{Tools: true, Installer: true, IP: "127.0.0.1", AuthorizedKey: func(line string) { e.ssh.AddAuthorizedKey(t, line) }})
	before := e.snapshot(t)
	marker := filepath.Join(t.TempDir(), "provisioned")
	j, rec := e.job(ISODef(), "base", e.isoKW(t, map[string]any{"convert_to_template": true}), shell("touch "+marker))
	art, err := run(context.Background(), ISODef(), j, false)
	must(t, rec, err)

	want := []string{"connect to vCenter", "check placement", "start HTTP server", "upload ISO", "create VM", "power on", "type boot command",
		"wait for IP", "connect via SSH", "provision", "shut down", "remove build settings", "convert to template"}
	if got := rec.Steps(""); strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("steps:\n got %v\nwant %v", got, want)
	}
	// The keys reached the VM's keyboard, with the HTTP server's URL.
	typed := e.sim.Typed("debian-base")
	var url string
	for u := range e.sim.Fetched() {
		url = u
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/preseed.cfg") {
		t.Fatalf("the installer fetched %v; typed %q", e.sim.Fetched(), typed)
	}
	wantTyped := "<esc>install auto=true priority=critical url=" + url + " hostname=debian-base<enter>"
	if typed != wantTyped {
		t.Errorf("typed:\n got %q\nwant %q", typed, wantTyped)
	}
	if got := e.sim.Fetched()[url]; got != "d-i debian-installer/locale string en_US\n" {
		t.Errorf("the installer got %q", got)
	}
	if !fileExists(marker) {
		t.Errorf("provisioner did not run")
	}
	if art.ID != "/DC0/vm/debian-base" || art.Fields["template"] != "/DC0/vm/debian-base" {
		t.Errorf("artifact %+v", art)
	}
	vm := e.sim.VM(t, "/DC0/vm/debian-base")
	if vm == nil || !vm.Config.Template {
		t.Fatalf("no template debian-base")
	}
	if vm.Config.GuestId != "debian12_64Guest" || vm.Config.Firmware != "efi" || vm.Config.Hardware.NumCPU != 2 || vm.Config.Hardware.MemoryMB != 2048 {
		t.Errorf("config: guest %s firmware %s CPUs %d RAM %d", vm.Config.GuestId, vm.Config.Firmware, vm.Config.Hardware.NumCPU, vm.Config.Hardware.MemoryMB)
	}
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	disks := devices.SelectByType((*types.VirtualDisk)(nil))
	if len(disks) != 2 || disks[0].(*types.VirtualDisk).CapacityInKB != 16384*1024 || disks[1].(*types.VirtualDisk).CapacityInKB != 1024*1024 {
		t.Errorf("disks: %d", len(disks))
	}
	if thin := disks[1].(*types.VirtualDisk).Backing.(*types.VirtualDiskFlatVer2BackingInfo).ThinProvisioned; thin == nil || *thin {
		t.Errorf("second disk should be thick")
	}
	if n := len(devices.SelectByType((*types.VirtualEthernetCard)(nil))); n != 1 {
		t.Errorf("%d network adapters", n)
	}
	// remove_cdrom (the default) took the drives out, and the uploaded
	// ISO is gone from the datastore.
	if n := len(devices.SelectByType((*types.VirtualCdrom)(nil))); n != 0 {
		t.Errorf("%d CD-ROM drives left in the template", n)
	}
	for _, f := range e.sim.DatastoreFiles(t) {
		if strings.HasPrefix(f, "imgbuild-") {
			t.Errorf("uploaded ISO left: %s", f)
		}
	}
	msgs := messages(rec)
	for _, want := range []string{"attaching 2 ISO(s) to /DC0/vm/debian-base", "uploading netinst.iso (139264 bytes) to [LocalDS_0] imgbuild-", "http: GET /preseed.cfg from 127.0.0.1:", "removing the build's guestinfo and 2 CD-ROM drive(s) from /DC0/vm/debian-base"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("no message %q in:\n%s", want, msgs)
		}
	}
	var uploaded bool
	for _, p := range rec.Of("progress") {
		uploaded = uploaded || (p.Message == "upload netinst.iso" && p.Unit == "bytes" && p.Total == 139264)
	}
	if !uploaded {
		t.Errorf("no upload progress in bytes")
	}
	if n := vcsimtest.New(before, e.sim.VMs(t)); len(n) != 1 {
		t.Errorf("new VMs %v", n)
	}
}

func TestISOKeepsTheCDROMsWhenAsked(t *testing.T) {
	e := newEnv(t)
	e.sim.SetGuest(vcsimtest.Guest{Tools: true, Installer: true, IP: "127.0.0.1", AuthorizedKey: func(line string) { e.ssh.AddAuthorizedKey(t, line) }})
	// No http_ip: the server listens on this machine's address toward
	// vCenter, 127.0.0.1 here.
	j, rec := e.job(ISODef(), "base", e.isoKW(t, map[string]any{"remove_cdrom": false, "cdrom_type": "sata", "boot_key_interval": "1ms", "http_ip": nil}))
	_, err := run(context.Background(), ISODef(), j, false)
	must(t, rec, err)
	vm := e.sim.VM(t, "/DC0/vm/debian-base")
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	cds := devices.SelectByType((*types.VirtualCdrom)(nil))
	if len(cds) != 2 {
		t.Fatalf("%d CD-ROM drives, want 2", len(cds))
	}
	var isos []string
	for _, cd := range cds {
		isos = append(isos, cd.GetVirtualDevice().Backing.(*types.VirtualCdromIsoBackingInfo).FileName)
		if _, ok := devices.FindByKey(cd.GetVirtualDevice().ControllerKey).(*types.VirtualAHCIController); !ok {
			t.Errorf("CD-ROM on %T, want a SATA (AHCI) controller", devices.FindByKey(cd.GetVirtualDevice().ControllerKey))
		}
	}
	// The uploaded ISO stays: the template's drive refers to it.
	if isos[0] != vcsimtest.ISOPath || !strings.HasPrefix(isos[1], "[LocalDS_0] imgbuild-") {
		t.Errorf("ISOs %v", isos)
	}
	if got := e.sim.Typed("debian-base"); !strings.Contains(got, "url=http://127.0.0.1:") || !strings.HasSuffix(got, "<enter>") {
		t.Errorf("typed %q", got)
	}
	if len(e.sim.Fetched()) != 1 {
		t.Errorf("fetched %v", e.sim.Fetched())
	}
}

func TestISOChecksumMismatchStopsBeforeTheUpload(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot(t)
	kw := e.isoKW(t, map[string]any{"iso_checksum": "sha256:" + strings.Repeat("ab", 32)})
	j, _ := e.job(ISODef(), "base", kw)
	_, err := run(context.Background(), ISODef(), j, false)
	if err == nil || !strings.HasPrefix(err.Error(), "upload ISO: iso_url netinst.iso has sha256 ") || !strings.HasSuffix(err.Error(), ", not abababababababababababababababababababababababababababababababab as iso_checksum says: the download is damaged or the checksum is for another file") {
		t.Errorf("error: %v", err)
	}
	e.noLeftovers(t, before)
	// A missing ISO on a datastore is found before anything is made.
	j, _ = e.job(ISODef(), "base", e.isoKW(t, map[string]any{"iso_paths": []string{"[LocalDS_0] iso/missing.iso"}}))
	_, err = run(context.Background(), ISODef(), j, false)
	want := "check placement: iso_paths: [LocalDS_0] iso/missing.iso does not exist: upload it first (govc datastore.upload), or use iso_url"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
}

func TestISODownloadsTheISOOverHTTP(t *testing.T) {
	t.Setenv("IMGBUILD_CACHE_DIR", t.TempDir())
	e := newEnv(t)
	e.sim.SetGuest(vcsimtest.Guest{Tools: true, Installer: true, IP: "127.0.0.1", AuthorizedKey: func(line string) { e.ssh.AddAuthorizedKey(t, line) }})
	kw := e.isoKW(t, nil)
	dir := t.TempDir()
	data, _ := os.ReadFile(filepath.Join(e.ws, "netinst.iso"))
	os.WriteFile(filepath.Join(dir, "netinst.iso"), data, 0o644)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	kw["iso_url"] = srv.URL + "/netinst.iso"
	kw["iso_paths"] = nil
	kw["http_content"] = nil
	kw["http_directory"] = "preseed"
	os.MkdirAll(filepath.Join(e.ws, "preseed"), 0o755)
	os.WriteFile(filepath.Join(e.ws, "preseed", "preseed.cfg"), []byte("from a directory\n"), 0o644)
	delete(kw, "iso_paths")
	delete(kw, "http_content")
	j, rec := e.job(ISODef(), "base", kw)
	_, err := run(context.Background(), ISODef(), j, false)
	must(t, rec, err)
	var downloaded bool
	for _, p := range rec.Of("progress") {
		downloaded = downloaded || (p.Message == "download ISO" && p.Done == int64(len(data)))
	}
	if !downloaded {
		t.Errorf("no download progress")
	}
	found := false
	for u, body := range e.sim.Fetched() {
		found = found || (strings.HasSuffix(u, "/preseed.cfg") && body == "from a directory\n")
	}
	if !found {
		t.Errorf("fetched %v", e.sim.Fetched())
	}
}
