package vsphere

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/vsphere/vcsimtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/journal"
	"github.com/imgbuild/imgbuild/engine/step"
)

// TestCleanupRemovesTheVMAKeptBuildLeftByItsMarker runs a vsphere_clone
// that fails at its provisioner with --on-error=abort, so that its VM is
// kept and its journal entry marked kept, as a killed build's would stay
// open; imgbuild cleanup's reap then finds the VM by its marker, logging in
// with GOVC_PASSWORD (the journal holds no password), and removes it.
func TestCleanupRemovesTheVMAKeptBuildLeftByItsMarker(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot(t)
	star := e.vcStar("") + fmt.Sprintf(`
vsphere_clone(
    name = "web",
    template = %q,
    customize = {"network_interface": [{"ipv4_address": "127.0.0.1", "ipv4_netmask": 8}]},
    provisioners = [shell(inline = ["exit 3"])],
    **vc
)
`, vcsimtest.Template)
	d := e.loadStar(t, star)
	dir := journal.Dir(e.ws)
	jr, err := journal.Begin(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sum := engine.Run(context.Background(), d.Graph, e.reg, event.NewBus(), engine.RunOptions{Workspace: d.Root, TempDir: t.TempDir(), OnError: step.Abort, Journal: jr})
	jr.Close(true)
	if s := sum.Result("web").Status; s != event.Failed {
		t.Fatalf("web: %s, want failed", s)
	}
	if left := vcsimtest.New(before, e.sim.VMs(t)); len(left) != 1 {
		t.Fatalf("the kept build left %d VMs, want its one", len(left))
	}

	// Without a password to log in with, the reaper says how to give one.
	reaped, err := engine.Reap(context.Background(), e.reg, dir, engine.ReapOptions{Kept: true})
	if err != nil {
		t.Fatal(err)
	}
	var vsphereErr error
	for _, r := range reaped {
		if r.Entry.Kind == JournalKind {
			vsphereErr = r.Err
		}
	}
	if vsphereErr == nil || !strings.Contains(vsphereErr.Error(), "the journal never holds the password: imgbuild cleanup logs in with GOVC_PASSWORD") {
		t.Errorf("reaping without a password: %v", vsphereErr)
	}

	getenv = func(k string) string {
		if k == "GOVC_PASSWORD" {
			return vcsimtest.Password
		}
		return ""
	}
	t.Cleanup(func() { getenv = func(string) string { return "" } })
	reaped, err = engine.Reap(context.Background(), e.reg, dir, engine.ReapOptions{Kept: true})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range reaped {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Entry.What, r.Err)
		}
		if r.Entry.Kind == JournalKind {
			found = r.Removed && len(r.Found) == 1 && strings.Contains(r.Found[0], "VM web (marked imgbuild.build=")
		}
	}
	if !found {
		t.Errorf("the reaper did not find and remove the VM: %+v", reaped)
	}
	e.noLeftovers(t, before)
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the journal is still there: %v", ents)
	}
}
