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
)

// stepPlacement finds everything the build names (datacenter, folder,
// cluster, host, pool, datastore, template, networks, ISOs, content library)
// and checks that the names it will create are free, before anything is
// created: a typo fails here, listing what exists, and leaves nothing.
type stepPlacement struct {
	env *buildEnv
	vc  *stepConnect

	// outputs: where the VM goes and what it is made from
	inv        *inventory
	folder     *object.Folder
	pool       *object.ResourcePool
	host       *object.HostSystem
	ds         *object.Datastore // nil: the template's (clone)
	source     *object.VirtualMachine
	replace    *object.VirtualMachine // the VM named vm_name, replaced at the end (force)
	createName string                 // the name the VM is created under
	network    object.NetworkReference
	nets       []object.NetworkReference // vsphere_iso's adapters, in order
	isoFiles   []string                  // iso_paths, as datastore paths
	library    *library.Library
	export     *exportPlan
}

// Name implements step.Step.
func (s *stepPlacement) Name() string { return "check placement" }

// Run implements step.Step.
func (s *stepPlacement) Run(ctx context.Context) error {
	b := s.env
	s.createName = b.name
	dcKeyword := "datacenter"
	if b.conn.Datacenter == "" {
		dcKeyword = "datacenter (or GOVC_DATACENTER)"
	}
	inv, err := openDatacenter(ctx, s.vc.sess, s.vc.ep.Datacenter, dcKeyword)
	if err != nil {
		return err
	}
	s.inv = inv
	if s.folder, err = inv.folder(ctx, b.loc.Folder); err != nil {
		return err
	}
	if b.clone != nil {
		if s.source, err = inv.sourceVM(ctx, b.clone.Template); err != nil {
			return err
		}
		if err := s.checkSource(ctx); err != nil {
			return err
		}
	}
	if err := s.findCompute(ctx); err != nil {
		return err
	}
	if err := s.findDatastore(ctx); err != nil {
		return err
	}
	if err := s.checkName(ctx); err != nil {
		return err
	}
	if err := s.findNetworks(ctx); err != nil {
		return err
	}
	if b.iso != nil {
		if err := s.checkISOPaths(ctx); err != nil {
			return err
		}
	}
	if b.fin.ContentLibrary != nil {
		if err := s.findLibrary(ctx); err != nil {
			return err
		}
	}
	if b.fin.Export != nil {
		if s.export, err = b.planExport(); err != nil {
			return err
		}
	}
	where := "pool " + poolName(ctx, s.pool)
	if s.host != nil {
		where += ", host " + s.host.Name()
	}
	if s.ds != nil {
		where += ", datastore " + datastoreNameOf(ctx, s.ds)
	}
	b.say("building %s in %s (%s)", s.plannedPath(), inv.where(), where)
	return nil
}

// checkSource checks what cloning needs from the source: a snapshot for a
// linked clone.
func (s *stepPlacement) checkSource(ctx context.Context) error {
	b := s.env
	if !b.clone.LinkedClone {
		return nil
	}
	var o mo.VirtualMachine
	if err := s.source.Properties(ctx, s.source.Reference(), []string{"snapshot"}, &o); err != nil {
		return fmt.Errorf("reading the snapshots of %s: %s", s.source.InventoryPath, explain(err))
	}
	if o.Snapshot == nil || o.Snapshot.CurrentSnapshot == nil {
		return fmt.Errorf("linked_clone needs a snapshot of %s to base the clone's disks on, and it has none: take one (govc snapshot.create), build it with create_snapshot = True, or set linked_clone = False", s.source.InventoryPath)
	}
	return nil
}

// findCompute finds where the VM runs: resource pool and host.
func (s *stepPlacement) findCompute(ctx context.Context) error {
	b := s.env
	inv := s.inv
	var cluster *object.ClusterComputeResource
	var err error
	if b.loc.Cluster != "" {
		if cluster, err = inv.cluster(ctx, b.loc.Cluster); err != nil {
			return err
		}
	}
	if b.loc.Host != "" {
		if s.host, err = inv.host(ctx, b.loc.Host, cluster); err != nil {
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
	case s.host != nil:
		root, err = s.host.ResourcePool(ctx)
		if err == nil {
			root.InventoryPath = path.Join(path.Dir(s.host.InventoryPath), "Resources")
		}
	}
	if err != nil {
		return fmt.Errorf("finding the resource pool to run in: %s", explain(err))
	}
	switch {
	case b.loc.ResourcePool != "":
		s.pool, err = inv.resourcePool(ctx, b.loc.ResourcePool, root)
	case root != nil:
		s.pool = root
	case s.source != nil && !isTemplate(ctx, s.source):
		s.pool, err = s.source.ResourcePool(ctx)
		if err != nil {
			err = fmt.Errorf("finding %s's resource pool: %s", s.source.InventoryPath, explain(err))
		}
	default:
		s.pool, err = inv.defaultPool(ctx)
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
func (s *stepPlacement) findDatastore(ctx context.Context) error {
	b := s.env
	var err error
	switch {
	case b.loc.Datastore != "":
		s.ds, err = s.inv.datastore(ctx, b.loc.Datastore)
	case b.iso != nil:
		host := s.host
		if host == nil {
			host = poolOwnerHost(ctx, s.pool)
		}
		s.ds, err = s.inv.defaultDatastore(ctx, host)
	}
	return err
}

// checkName checks that vm_name is free in the folder, or, with force,
// plans to build under a temporary name and replace the VM at the end.
func (s *stepPlacement) checkName(ctx context.Context) error {
	b := s.env
	existing, err := s.inv.child(ctx, s.folder, b.name)
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
	s.replace = existing
	s.createName = b.name + "-imgbuild-" + b.id[:8]
	b.say("%s exists (a %s): building as %s and replacing it once the build succeeded (force = True)", existing.InventoryPath, what, s.createName)
	other, err := s.inv.child(ctx, s.folder, s.createName)
	if err != nil {
		return err
	}
	if other != nil {
		return fmt.Errorf("the temporary name %s is taken too: remove it", path.Join(s.folder.InventoryPath, s.createName))
	}
	return nil
}

// findNetworks finds the networks the VM's adapters connect to.
func (s *stepPlacement) findNetworks(ctx context.Context) error {
	b := s.env
	var err error
	if b.clone != nil && b.clone.Network != "" {
		s.network, err = s.inv.network(ctx, b.clone.Network, "network")
		return err
	}
	if b.iso != nil {
		for i, a := range b.iso.NetworkAdapters {
			n, err := s.inv.network(ctx, a.Network, fmt.Sprintf("network_adapters[%d]", i))
			if err != nil {
				return err
			}
			s.nets = append(s.nets, n)
		}
	}
	return nil
}

var dsPathRe = regexp.MustCompile(`^\[([^\]]+)\] ?(.*)$`)

// checkISOPaths checks that the ISOs named in iso_paths exist.
func (s *stepPlacement) checkISOPaths(ctx context.Context) error {
	b := s.env
	for _, p := range b.iso.ISOPaths {
		m := dsPathRe.FindStringSubmatch(p)
		if m == nil {
			return fmt.Errorf("iso_paths: %q is not a datastore path", p)
		}
		ds, err := s.inv.datastore(ctx, m[1])
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
		s.isoFiles = append(s.isoFiles, fmt.Sprintf("[%s] %s", m[1], m[2]))
	}
	return nil
}

// findLibrary finds the content library to import into and checks that the
// item's name is free.
func (s *stepPlacement) findLibrary(ctx context.Context) error {
	b := s.env
	cl := b.fin.ContentLibrary
	rc, err := s.vc.sess.restClient(ctx)
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
			s.library = &libs[i]
		}
		have = append(have, libs[i].Name)
	}
	if s.library == nil {
		return notFound("content library", cl.Library, "vCenter at "+s.vc.ep.String(), "content_library_destination", have)
	}
	ids, err := m.FindLibraryItems(ctx, library.FindItem{LibraryID: s.library.ID, Name: b.libraryItemName()})
	if err != nil {
		return fmt.Errorf("looking for %q in content library %s: %s", b.libraryItemName(), cl.Library, explain(err))
	}
	if len(ids) > 0 {
		return fmt.Errorf("content library %s already has an item named %q: choose another name in content_library_destination, or delete that item", cl.Library, b.libraryItemName())
	}
	return nil
}

// plannedPath is the inventory path the VM is created at.
func (s *stepPlacement) plannedPath() string {
	if s.folder == nil {
		return s.createName
	}
	return path.Join(s.folder.InventoryPath, s.createName)
}
