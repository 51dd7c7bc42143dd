package vsphere

import (
	"context"
	"strings"
	"testing"

	"github.com/vmware/govmomi/object"

	"github.com/imgbuild/imgbuild/engine"
)

func TestVerifyFindsTheTemplateWithItsMarkerAndNamesWhatIsGone(t *testing.T) {
	e := newEnv(t)
	j, rec := e.job(CloneDef(), "web", e.cloneKW(map[string]any{
		"vm_name": "verify-1", "shutdown_command": "touch " + e.poweroff, "convert_to_template": true,
	}))
	art, err := run(context.Background(), CloneDef(), j, false)
	must(t, rec, err)
	cfg, err := decodeConfig(CloneDef(), e.cloneKW(map[string]any{"vm_name": "verify-1"}))
	if err != nil {
		t.Fatal(err)
	}
	check := engine.ArtifactCheck{Build: "web", Config: cfg, Artifact: art}
	if errs := Verify(context.Background(), []engine.ArtifactCheck{check}); errs[0] != nil {
		t.Fatalf("an intact template: %v", errs[0])
	}
	// Another VM in its place does not carry the build's marker.
	stranger := *art
	stranger.Fields = map[string]any{"inventory_path": art.Fields["inventory_path"], "marker": "someone-else"}
	err = Verify(context.Background(), []engine.ArtifactCheck{{Build: "web", Config: cfg, Artifact: &stranger}})[0]
	if err == nil || !strings.Contains(err.Error(), "/DC0/vm/verify-1 no longer carries the marker of the build that made it (imgbuild.build=someone-else)") {
		t.Errorf("a VM of another's: %v", err)
	}
	ep, err := resolveEndpoint(cfg.(*CloneConfig).Connection)
	if err != nil {
		t.Fatal(err)
	}
	s, err := login(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	defer s.logout(context.Background())
	ref, err := object.NewSearchIndex(s.client.Client).FindByInventoryPath(context.Background(), "/DC0/vm/verify-1")
	if err != nil || ref == nil {
		t.Fatalf("finding the template: %v", err)
	}
	if task, err := ref.(*object.VirtualMachine).Destroy(context.Background()); err != nil || task.Wait(context.Background()) != nil {
		t.Fatalf("destroying the template: %v", err)
	}
	err = Verify(context.Background(), []engine.ArtifactCheck{check})[0]
	if err == nil || !strings.Contains(err.Error(), "/DC0/vm/verify-1 no longer exists in vCenter") {
		t.Errorf("a removed template: %v", err)
	}
}
