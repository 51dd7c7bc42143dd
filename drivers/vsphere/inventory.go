package vsphere

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/engine/schema"
)

// maxListed bounds how many existing names a "not found" error lists.
const maxListed = 15

// notFound is the error for a named object that does not exist: it names
// what was looked for and where, suggests the nearest name and lists what
// exists.
func notFound(kind, name, where, keyword string, have []string) error {
	msg := fmt.Sprintf("%s %q not found in %s", kind, name, where)
	if near := schema.Nearest(name, have); near != "" && near != name {
		msg += fmt.Sprintf(" (did you mean %q?)", near)
	}
	msg += ": " + listing(kind, have)
	if keyword != "" {
		msg += "; check " + keyword
	}
	return errors.New(msg)
}

// listing says what exists: "there are 2 datastores: a, b".
func listing(kind string, have []string) string {
	sort.Strings(have)
	switch len(have) {
	case 0:
		return "there is no " + kind
	case 1:
		return "there is one " + kind + ": " + have[0]
	}
	shown := have
	more := ""
	if len(shown) > maxListed {
		shown = shown[:maxListed]
		more = fmt.Sprintf(" and %d more", len(have)-maxListed)
	}
	return fmt.Sprintf("there are %d %ss: %s%s", len(have), kind, strings.Join(shown, ", "), more)
}

func isNotFound(err error) bool {
	var nf *find.NotFoundError
	var dnf *find.DefaultNotFoundError
	return errors.As(err, &nf) || errors.As(err, &dnf)
}

func isMultiple(err error) bool {
	var mf *find.MultipleFoundError
	var dmf find.DefaultMultipleFoundError
	var dmfp *find.DefaultMultipleFoundError
	return errors.As(err, &mf) || errors.As(err, &dmf) || errors.As(err, &dmfp)
}

// inventory finds objects in one datacenter.
type inventory struct {
	s      *vcSession
	finder *find.Finder
	dc     *object.Datacenter
	dcName string
	vmRoot *object.Folder
}

// openDatacenter finds the datacenter to build in: the named one, else the
// only one there is.
func openDatacenter(ctx context.Context, s *vcSession, name, keyword string) (*inventory, error) {
	f := find.NewFinder(s.client.Client, false)
	var dc *object.Datacenter
	var err error
	if name != "" {
		dc, err = f.Datacenter(ctx, name)
	} else {
		dc, err = f.DefaultDatacenter(ctx)
	}
	if err != nil {
		if !isNotFound(err) && !isMultiple(err) {
			return nil, fmt.Errorf("finding the datacenter: %s", explain(err))
		}
		var have []string
		if list, lerr := f.DatacenterList(ctx, "*"); lerr == nil {
			for _, d := range list {
				have = append(have, d.Name())
			}
		}
		if name == "" {
			if len(have) == 0 {
				return nil, fmt.Errorf("vCenter at %s has no datacenter to build in", s.ep)
			}
			return nil, fmt.Errorf("vCenter at %s has several datacenters: set datacenter (or GOVC_DATACENTER) to one of %s", s.ep, strings.Join(have, ", "))
		}
		return nil, notFound("datacenter", name, "vCenter at "+s.ep.String(), keyword, have)
	}
	f.SetDatacenter(dc)
	folders, err := dc.Folders(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the folders of datacenter %s: %s", dc.Name(), explain(err))
	}
	return &inventory{s: s, finder: f, dc: dc, dcName: dc.Name(), vmRoot: folders.VmFolder}, nil
}

func (inv *inventory) where() string { return "datacenter " + inv.dcName }

// folder finds a VM folder by its path relative to the datacenter's VM
// folder; "" is the VM folder itself.
func (inv *inventory) folder(ctx context.Context, rel string) (*object.Folder, error) {
	if rel == "" {
		return inv.vmRoot, nil
	}
	p := path.Join(inv.vmRoot.InventoryPath, rel)
	fo, err := inv.finder.Folder(ctx, p)
	if err == nil {
		return fo, nil
	}
	if !isNotFound(err) {
		return nil, fmt.Errorf("finding folder %q: %s", rel, explain(err))
	}
	var have []string
	for _, pattern := range []string{"*", "*/*", "*/*/*"} {
		list, _ := inv.finder.FolderList(ctx, path.Join(inv.vmRoot.InventoryPath, pattern))
		for _, f := range list {
			have = append(have, strings.TrimPrefix(f.InventoryPath, inv.vmRoot.InventoryPath+"/"))
		}
	}
	return nil, notFound("VM folder", rel, inv.where()+"'s VM folder", "folder", have)
}

func (inv *inventory) cluster(ctx context.Context, name string) (*object.ClusterComputeResource, error) {
	c, err := inv.finder.ClusterComputeResource(ctx, name)
	if err == nil {
		return c, nil
	}
	if !isNotFound(err) {
		return nil, fmt.Errorf("finding cluster %q: %s", name, explain(err))
	}
	list, lerr := inv.finder.ClusterComputeResourceList(ctx, "*")
	return nil, notFound("cluster", name, inv.where(), "cluster", names(list, lerr, (*object.ClusterComputeResource).Name))
}

func (inv *inventory) host(ctx context.Context, name string, within *object.ClusterComputeResource) (*object.HostSystem, error) {
	p := name
	if within != nil && !strings.Contains(name, "/") {
		p = path.Join(within.InventoryPath, name)
	}
	h, err := inv.finder.HostSystem(ctx, p)
	if err == nil {
		return h, nil
	}
	if !isNotFound(err) {
		return nil, fmt.Errorf("finding host %q: %s", name, explain(err))
	}
	pattern, where := "*", inv.where()
	if within != nil {
		pattern, where = path.Join(within.InventoryPath, "*"), "cluster "+within.Name()
	}
	list, lerr := inv.finder.HostSystemList(ctx, pattern)
	return nil, notFound("host", name, where, "host", names(list, lerr, (*object.HostSystem).Name))
}

// resourcePool finds rel under root (a cluster's or host's root pool), or
// as a path of its own when there is no root.
func (inv *inventory) resourcePool(ctx context.Context, rel string, root *object.ResourcePool) (*object.ResourcePool, error) {
	p := rel
	if root != nil && !strings.HasPrefix(rel, "/") {
		p = path.Join(root.InventoryPath, rel)
	}
	rp, err := inv.finder.ResourcePool(ctx, p)
	if err == nil {
		return rp, nil
	}
	if !isNotFound(err) && !isMultiple(err) {
		return nil, fmt.Errorf("finding resource pool %q: %s", rel, explain(err))
	}
	have := inv.poolPaths(ctx)
	if isMultiple(err) {
		return nil, fmt.Errorf("several resource pools match %q: give its full path, one of %s", rel, strings.Join(have, ", "))
	}
	return nil, notFound("resource pool", rel, inv.where(), "resource_pool", have)
}

// defaultPool is the pool to use when neither cluster, host nor
// resource_pool is set: the only one there is.
func (inv *inventory) defaultPool(ctx context.Context) (*object.ResourcePool, error) {
	rp, err := inv.finder.DefaultResourcePool(ctx)
	if err == nil {
		return rp, nil
	}
	have := inv.poolPaths(ctx)
	if len(have) == 0 {
		return nil, fmt.Errorf("%s has no resource pool to run the VM in: add a host or cluster", inv.where())
	}
	sort.Strings(have)
	return nil, fmt.Errorf("%s has several places to run the VM: set cluster, host or resource_pool (resource pools: %s)", inv.where(), strings.Join(have, ", "))
}

func (inv *inventory) datastore(ctx context.Context, name string) (*object.Datastore, error) {
	ds, err := inv.finder.Datastore(ctx, name)
	if err == nil {
		return ds, nil
	}
	if !isNotFound(err) {
		return nil, fmt.Errorf("finding datastore %q: %s", name, explain(err))
	}
	return nil, notFound("datastore", name, inv.where(), "datastore", inv.datastoreNames(ctx))
}

func (inv *inventory) datastoreNames(ctx context.Context) []string {
	list, err := inv.finder.DatastoreList(ctx, "*")
	return names(list, err, (*object.Datastore).Name)
}

// poolPaths lists the datacenter's resource pools, by inventory path.
func (inv *inventory) poolPaths(ctx context.Context) []string {
	list, err := inv.finder.ResourcePoolList(ctx, "*")
	return names(list, err, func(r *object.ResourcePool) string { return r.InventoryPath })
}

// names is name of each object of list, for a message saying what there
// is; nothing when listing failed (err).
func names[T any](list []T, err error, name func(T) string) []string {
	if err != nil {
		return nil
	}
	var have []string
	for _, x := range list {
		have = append(have, name(x))
	}
	return have
}

// defaultDatastore picks the datastore when none is named: the only one
// the host (or the datacenter) has.
func (inv *inventory) defaultDatastore(ctx context.Context, host *object.HostSystem) (*object.Datastore, error) {
	if host != nil {
		var h mo.HostSystem
		if err := host.Properties(ctx, host.Reference(), []string{"datastore"}, &h); err == nil && len(h.Datastore) == 1 {
			ds := object.NewDatastore(inv.s.client.Client, h.Datastore[0])
			name, err := ds.ObjectName(ctx)
			if err == nil {
				ds.InventoryPath = path.Join("/", inv.dcName, "datastore", name)
				return ds, nil
			}
		}
	}
	ds, err := inv.finder.DefaultDatastore(ctx)
	if err == nil {
		return ds, nil
	}
	have := inv.datastoreNames(ctx)
	if len(have) == 0 {
		return nil, fmt.Errorf("%s has no datastore for the VM's files", inv.where())
	}
	sort.Strings(have)
	return nil, fmt.Errorf("%s has several datastores: set datastore to one of %s", inv.where(), strings.Join(have, ", "))
}

func (inv *inventory) network(ctx context.Context, name, keyword string) (object.NetworkReference, error) {
	n, err := inv.finder.Network(ctx, name)
	if err == nil {
		return n, nil
	}
	if !isNotFound(err) && !isMultiple(err) {
		return nil, fmt.Errorf("finding network %q: %s", name, explain(err))
	}
	var have []string
	if list, lerr := inv.finder.NetworkList(ctx, "*"); lerr == nil {
		for _, n := range list {
			if n.Reference().Type == "DistributedVirtualSwitch" || n.Reference().Type == "VmwareDistributedVirtualSwitch" {
				continue
			}
			have = append(have, path.Base(n.GetInventoryPath()))
		}
	}
	if isMultiple(err) {
		return nil, fmt.Errorf("several networks are named %q in %s: give its path (\"network/folder/%s\") in %s", name, inv.where(), name, keyword)
	}
	return nil, notFound("network", name, inv.where(), keyword, have)
}

// sourceVM finds the VM or template to clone.
func (inv *inventory) sourceVM(ctx context.Context, name string) (*object.VirtualMachine, error) {
	p := name
	if strings.Contains(name, "/") && !strings.HasPrefix(name, "/") {
		p = path.Join(inv.vmRoot.InventoryPath, name)
	}
	vm, err := inv.finder.VirtualMachine(ctx, p)
	if err == nil {
		return vm, nil
	}
	if isMultiple(err) {
		return nil, fmt.Errorf("several VMs are named %q in %s: give the template's folder too, such as template = \"templates/%s\"", name, inv.where(), name)
	}
	if !isNotFound(err) {
		return nil, fmt.Errorf("finding template %q: %s", name, explain(err))
	}
	templates, err2 := inv.templateNames(ctx)
	if err2 != nil {
		return nil, fmt.Errorf("template %q not found in %s (listing the templates failed too: %s)", name, inv.where(), explain(err2))
	}
	return nil, notFound("template", name, inv.where(), "template", templates)
}

// templateNames lists the templates of the datacenter, by name.
func (inv *inventory) templateNames(ctx context.Context) ([]string, error) {
	m := view.NewManager(inv.s.client.Client)
	v, err := m.CreateContainerView(ctx, inv.vmRoot.Reference(), []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, err
	}
	defer v.Destroy(context.WithoutCancel(ctx))
	var vms []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "config.template"}, &vms); err != nil {
		return nil, err
	}
	var out []string
	for _, vm := range vms {
		if vm.Config != nil && vm.Config.Template {
			out = append(out, vm.Name)
		}
	}
	return out, nil
}

// child finds the VM or template named name directly in folder, or nil.
func (inv *inventory) child(ctx context.Context, folder *object.Folder, name string) (*object.VirtualMachine, error) {
	ref, err := object.NewSearchIndex(inv.s.client.Client).FindChild(ctx, folder, name)
	if err != nil {
		return nil, fmt.Errorf("looking for %q in %s: %s", name, folder.InventoryPath, explain(err))
	}
	if ref == nil {
		return nil, nil
	}
	if ref.Reference().Type != "VirtualMachine" {
		return nil, fmt.Errorf("%s/%s exists and is a %s, not a VM: choose another vm_name", folder.InventoryPath, name, ref.Reference().Type)
	}
	vm := object.NewVirtualMachine(inv.s.client.Client, ref.Reference())
	vm.InventoryPath = path.Join(folder.InventoryPath, name)
	return vm, nil
}

// vmKind says "template" or "VM" for messages.
func vmKind(ctx context.Context, vm *object.VirtualMachine) string {
	var o mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config.template", "runtime.powerState"}, &o); err != nil || o.Config == nil {
		return "VM"
	}
	if o.Config.Template {
		return "template"
	}
	if o.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn {
		return "powered-on VM"
	}
	return "VM"
}

// datastoreNameOf reads a datastore's name.
func datastoreNameOf(ctx context.Context, ds *object.Datastore) string {
	if ds.InventoryPath != "" {
		return path.Base(ds.InventoryPath)
	}
	n, err := ds.ObjectName(ctx)
	if err != nil {
		return ds.Reference().Value
	}
	return n
}

// poolOwnerHost returns the host a pool's compute resource has when it is a
// standalone host, for datastore defaults.
func poolOwnerHost(ctx context.Context, rp *object.ResourcePool) *object.HostSystem {
	var p mo.ResourcePool
	if err := rp.Properties(ctx, rp.Reference(), []string{"owner"}, &p); err != nil {
		return nil
	}
	var cr mo.ComputeResource
	if err := rp.Properties(ctx, p.Owner, []string{"host"}, &cr); err != nil || len(cr.Host) != 1 {
		return nil
	}
	return object.NewHostSystem(rp.Client(), cr.Host[0])
}
