package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"

	"github.com/imgbuild/imgbuild/engine"
)

// Verify implements BuilderDef.Verify for vsphere_clone and vsphere_iso: the
// VM or template at the artifact's inventory path must still exist and
// carry the marker of the build that made it (a VM of the same name made
// by someone else is not this build's artifact). It logs in once per
// vCenter for all the checks of a run. An artifact that was exported
// (files, checked by the engine against their sha256) or imported into a
// content library has no VM to look at.
func Verify(ctx context.Context, checks []engine.ArtifactCheck) []error {
	errs := make([]error, len(checks))
	sessions := map[string]*vcSession{}
	defer func() {
		for _, s := range sessions {
			_ = s.logout(context.WithoutCancel(ctx))
		}
	}()
	for i, c := range checks {
		var conn Connection
		switch cfg := c.Config.(type) {
		case *CloneConfig:
			conn = cfg.Connection
		case *ISOConfig:
			conn = cfg.Connection
		default:
			errs[i] = fmt.Errorf("vsphere: config is %T", c.Config)
			continue
		}
		path, _ := c.Artifact.Fields["inventory_path"].(string)
		marker, _ := c.Artifact.Fields["marker"].(string)
		if path == "" {
			continue
		}
		ep, err := resolveEndpoint(conn)
		if err != nil {
			errs[i] = err
			continue
		}
		s, ok := sessions[ep.String()+"\x00"+ep.Username]
		if !ok {
			if s, err = login(ctx, ep); err != nil {
				errs[i] = err
				continue
			}
			sessions[ep.String()+"\x00"+ep.Username] = s
		}
		ref, err := object.NewSearchIndex(s.client.Client).FindByInventoryPath(ctx, path)
		if err != nil {
			errs[i] = fmt.Errorf("looking for %s: %s", path, explain(err))
			continue
		}
		vm, ok := ref.(*object.VirtualMachine)
		if !ok || vm == nil {
			errs[i] = fmt.Errorf("%s no longer exists in vCenter %s", path, ep)
			continue
		}
		st, err := readState(ctx, vm)
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("reading %s: %s", path, explain(err))
		case st.Gone:
			errs[i] = fmt.Errorf("%s no longer exists in vCenter %s", path, ep)
		case marker != "" && st.Marker != marker:
			errs[i] = fmt.Errorf("%s no longer carries the marker of the build that made it (%s=%s): something else replaced it", path, markerKey, marker)
		}
	}
	return errs
}
