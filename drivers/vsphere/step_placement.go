package vsphere

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vapi/library"
	"github.com/vmware/govmomi/vim25/mo"

	"github.com/imgbuild/imgbuild/engine/step"
)

// placementStep finds everything the build names (datacenter, folder,
// cluster, host, pool, datastore, template, networks, ISOs, content library)
// and checks that the names it will create are free, before anything is
// created: a typo fails here, listing what exists, and leaves nothing.
func (b *build) placementStep() step.Step {
	return &step.Func{StepName: "check placement", RunFunc: b.checkPlacement}
}

func (b *build) checkPlacement(ctx context.Context) error {
	dcKeyword := "datacenter"
	if b.conn.Datacenter == "" {
		dcKeyword = "datacenter (or GOVC_DATACENTER)"
	}
	inv, err := openDatacenter(ctx, b.sess, b.ep.Datacenter, dcKeyword)
	if err != nil {
		return err
	}
	b.inv = inv
	if b.folder, err = inv.folder(ctx, b.loc.Folder); err != nil {
		return err
	}
	if b.clone != nil {
		if b.source, err = inv.sourceVM(ctx, b.clone.Template); err != nil {
			return err
		}
		if err := b.checkSource(ctx); err != nil {
			return err
		}
	}
	if err := b.findCompute(ctx); err != nil {
		return err
	}
	if err := b.findDatastore(ctx); err != nil {
		return err
	}
	if err := b.checkName(ctx); err != nil {
		return err
	}
	if err := b.findNetworks(ctx); err != nil {
		return err
	}
	if b.iso != nil {
		if err := b.checkISOPaths(ctx); err != nil {
			return err
		}
	}
	if b.fin.ContentLibrary != nil {
		if err := b.findLibrary(ctx); err != nil {
			return err
		}
	}
	if b.fin.Export != nil {
		if b.export, err = b.planExport(); err != nil {
			return err
		}
	}
	where := "pool " + poolName(ctx, b.pool)
	if b.host != nil {
		where += ", host " + b.host.Name()
	}
	if b.ds != nil {
		where += ", datastore " + datastoreNameOf(ctx, b.ds)
	}
	b.say("building %s in %s (%s)", b.plannedPath(), inv.where(), where)
	return nil
}

// checkSource checks what cloning needs from the source: a snapshot for a
// linked clone.
func (b *build) checkSource(ctx context.Context) error {
	if !b.clone.LinkedClone {
		return nil
	}
	var o mo.VirtualMachine
	if err := b.source.Properties(ctx, b.source.Reference(), []string{"snapshot"}, &o); err != nil {
		return fmt.Errorf("reading the snapshots of %s: %s", b.source.InventoryPath, explain(err))
	}
	if o.Snapshot == nil || o.Snapshot.CurrentSnapshot == nil {
		return fmt.Errorf("linked_clone needs a snapshot of %s to base the clone's disks on, and it has none: take one (govc snapshot.create), build it with create_snapshot = True, or set linked_clone = False", b.source.InventoryPath)
	}
	return nil
}

// findCompute finds where the VM runs: resource pool and host.
func (b *build) findCompute(ctx context.Context) error {
	inv := b.inv
	var cluster *object.ClusterComputeResource
	var err error
	if b.loc.Cluster != "" {
		if cluster, err = inv.cluster(ctx, b.loc.Cluster); err != nil {
			return err
		}
	}
	if b.loc.Host != "" {
		if b.host, err = inv.host(ctx, b.loc.Host, cluster); err != nil {
			return err
		}
	}
	var root *object.ResourcePool
	switch {
	case cluster != nil:
		root, err = cluster.ResourcePool(ctx)
		if err == nil {
			root.InventoryPath = path.Join(cluster.InventoryPath, "Resources")
		}
	case b.host != nil:
		root, err = b.host.ResourcePool(ctx)
		if err == nil {
			root.InventoryPath = path.Join(path.Dir(b.host.InventoryPath), "Resources")
		}
	}
	if err != nil {
		return fmt.Errorf("finding the resource pool to run in: %s", explain(err))
	}
	switch {
	case b.loc.ResourcePool != "":
		b.pool, err = inv.resourcePool(ctx, b.loc.ResourcePool, root)
	case root != nil:
		b.pool = root
	case b.source != nil && !isTemplate(ctx, b.source):
		b.pool, err = b.source.ResourcePool(ctx)
		if err != nil {
			err = fmt.Errorf("finding %s's resource pool: %s", b.source.InventoryPath, explain(err))
		}
	default:
		b.pool, err = inv.defaultPool(ctx)
	}
	return err
}

func isTemplate(ctx context.Context, vm *object.VirtualMachine) bool {
	t, err := vm.IsTemplate(ctx)
	return err == nil && t
}

func poolName(ctx context.Context, rp *object.ResourcePool) string {
	if rp.InventoryPath != "" {
		return rp.InventoryPath
	}
	if n, err := rp.ObjectName(ctx); err == nil {
		return n
	}
	return rp.Reference().Value
}

// findDatastore finds the datastore: the named one, else (vsphere_iso) the
// only one in reach. A clone without one keeps its template's.
func (b *build) findDatastore(ctx context.Context) error {
	var err error
	switch {
	case b.loc.Datastore != "":
		b.ds, err = b.inv.datastore(ctx, b.loc.Datastore)
	case b.iso != nil:
		host := b.host
		if host == nil {
			host = poolOwnerHost(ctx, b.pool)
		}
		b.ds, err = b.inv.defaultDatastore(ctx, host)
	}
	return err
}

// checkName checks that vm_name is free in the folder, or, with force,
// plans to build under a temporary name and replace the VM at the end.
func (b *build) checkName(ctx context.Context) error {
	existing, err := b.inv.child(ctx, b.folder, b.name)
	if err != nil {
		return err
	}
	if existing == nil {
		return nil
	}
	what := vmKind(ctx, existing)
	if !b.loc.Force {
		return fmt.Errorf("vm_name %q is already taken: %s exists (a %s); choose another vm_name, remove it, or set force = True to replace it once the new one is built", b.name, existing.InventoryPath, what)
	}
	b.replace = existing
	b.createName = b.name + "-imgbuild-" + b.id[:8]
	b.say("%s exists (a %s): building as %s and replacing it once the build succeeded (force = True)", existing.InventoryPath, what, b.createName)
	if other, err := b.inv.child(ctx, b.folder, b.createName); err != nil || other != nil {
		return fmt.Errorf("the temporary name %s is taken too: remove it", path.Join(b.folder.InventoryPath, b.createName))
	}
	return nil
}

// findNetworks finds the networks the VM's adapters connect to.
func (b *build) findNetworks(ctx context.Context) error {
	var err error
	if b.clone != nil && b.clone.Network != "" {
		b.network, err = b.inv.network(ctx, b.clone.Network, "network")
		return err
	}
	if b.iso != nil {
		for i, a := range b.iso.NetworkAdapters {
			n, err := b.inv.network(ctx, a.Network, fmt.Sprintf("network_adapters[%d]", i))
			if err != nil {
				return err
			}
			b.nets = append(b.nets, n)
		}
	}
	return nil
}

var dsPathRe = regexp.MustCompile(`^\[([^\]]+)\] ?(.*)$`)

// checkISOPaths checks that the ISOs named in iso_paths exist.
func (b *build) checkISOPaths(ctx context.Context) error {
	for _, p := range b.iso.ISOPaths {
		m := dsPathRe.FindStringSubmatch(p)
		if m == nil {
			return fmt.Errorf("iso_paths: %q is not a datastore path", p)
		}
		ds, err := b.inv.datastore(ctx, m[1])
		if err != nil {
			return fmt.Errorf("iso_paths: %q: %w", p, err)
		}
		if _, err := ds.Stat(ctx, m[2]); err != nil {
			var nf object.DatastoreNoSuchFileError
			var nfp *object.DatastoreNoSuchFileError
			if errors.As(err, &nf) || errors.As(err, &nfp) || strings.Contains(err.Error(), "cannot stat") {
				return fmt.Errorf("iso_paths: %s does not exist: upload it first (govc datastore.upload), or use iso_url", p)
			}
			return fmt.Errorf("iso_paths: checking %s: %s", p, explain(err))
		}
		b.isoFiles = append(b.isoFiles, fmt.Sprintf("[%s] %s", m[1], m[2]))
	}
	return nil
}

// findLibrary finds the content library to import into and checks that the
// item's name is free.
func (b *build) findLibrary(ctx context.Context) error {
	cl := b.fin.ContentLibrary
	rc, err := b.sess.restClient(ctx)
	if err != nil {
		return err
	}
	m := library.NewManager(rc)
	libs, err := m.GetLibraries(ctx)
	if err != nil {
		return fmt.Errorf("listing content libraries: %s", explain(err))
	}
	var have []string
	for i := range libs {
		if libs[i].Name == cl.Library {
			b.library = &libs[i]
		}
		have = append(have, libs[i].Name)
	}
	if b.library == nil {
		return notFound("content library", cl.Library, "vCenter at "+b.ep.String(), "content_library_destination", have)
	}
	ids, err := m.FindLibraryItems(ctx, library.FindItem{LibraryID: b.library.ID, Name: b.libraryItemName()})
	if err != nil {
		return fmt.Errorf("looking for %q in content library %s: %s", b.libraryItemName(), cl.Library, explain(err))
	}
	if len(ids) > 0 {
		return fmt.Errorf("content library %s already has an item named %q: choose another name in content_library_destination, or delete that item", cl.Library, b.libraryItemName())
	}
	return nil
}
