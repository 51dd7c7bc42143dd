package vsphere

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/post/posttest"
	"github.com/imgbuild/imgbuild/drivers/vsphere/vcsimtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// A whole description run as the command line runs it: a vsphere_iso base
// template, and a linked clone of it that refers to it by base.template (an
// edge in the graph), with provisioners and post-processors.
func TestADescriptionBuildsATemplateFromAnISOThenALinkedCloneOfIt(t *testing.T) {
	e := newEnv(t)
	e.sim.SetGuest(vcsimtest.Guest{Tools: true, Installer: true, IP: "127.0.0.1", AuthorizedKey: func(line string) { e.ssh.AddAuthorizedKey(t, line) }, PowerOffFile: e.poweroff})
	before := e.snapshot(t)
	marker := filepath.Join(t.TempDir(), "provisioned")
	star := e.vcStar("") + baseStar(fmt.Sprintf(`
    create_snapshot = True,
    convert_to_template = True,
    provisioners = [shell(inline = ["echo base >> %s"])],`, marker)) + fmt.Sprintf(`
vsphere_clone(
    name = "web",
    template = base.template,
    vm_name = "web-" + "1.0",
    linked_clone = True,
    customize = {"network_interface": [{"ipv4_address": "127.0.0.1", "ipv4_netmask": 8}]},
    shutdown_command = "touch %s",
    export = {"output_directory": "out/web", "format": "ova"},
    destroy = True,
    provisioners = [shell(inline = ["echo web >> %s"])],
    post = [manifest(output = "out/manifest.json")],
    **vc
)
`, e.poweroff, marker)
	d := e.loadStar(t, star)
	if deps := d.Graph.Deps(mustNode(t, d.Graph, "web")); len(deps) != 1 || deps[0] != "base" {
		t.Errorf("web depends on %v, want [base]", deps)
	}
	rec := &testkit.Recorder{}
	sum := engine.Run(context.Background(), d.Graph, e.reg, event.NewBus(rec), engine.RunOptions{Workspace: d.Root, TempDir: t.TempDir()})
	if !sum.OK() {
		for _, r := range sum.Results {
			t.Errorf("%s: %s %v", r.Build, r.Status, r.Err)
		}
		t.Fatalf("events:\n%s", rec.JSON())
	}
	if data, _ := os.ReadFile(marker); string(data) != "base\nweb\n" {
		t.Errorf("provisioners ran as %q", data)
	}
	base, web := sum.Result("base").Artifact, sum.Result("web").Artifact
	if base.Fields["template"] != "/DC0/vm/debian-base" {
		t.Errorf("base artifact %+v", base)
	}
	if web.ID != "out/web" || len(web.Files) != 1 || web.Files[0] != "out/web/web-1.0.ova" {
		t.Errorf("web artifact %+v", web)
	}
	builds := posttest.Manifest(t, filepath.Join(e.ws, "out", "manifest.json"))
	if len(builds) != 1 || builds[0].Name != "web" || len(builds[0].Files) != 1 || builds[0].Files[0].Name != "out/web/web-1.0.ova" {
		t.Errorf("manifest %+v", builds)
	}
	// The password never shows.
	if strings.Contains(rec.JSON(), vcsimtest.Password) {
		t.Errorf("the password shows in the events")
	}
	// Left: the base template only (web was destroyed after its export).
	if n := vcsimtest.New(before, e.sim.VMs(t)); len(n) != 1 || !strings.HasPrefix(n[0], "debian-base ") {
		t.Errorf("VMs made: %v", n)
	}
}

func mustNode(t *testing.T, g *engine.Graph, name string) *engine.Node {
	t.Helper()
	n, ok := g.Node(name)
	if !ok {
		t.Fatalf("no build %q", name)
	}
	return n
}
