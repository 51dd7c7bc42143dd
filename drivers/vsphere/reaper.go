package vsphere

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/engine/journal"
)

// JournalKind is the kind of the journal entry a vsphere_clone or
// vsphere_iso build records once it knows its vCenter, before it creates
// anything there: the VMs carrying its marker (markerKey = its id) and the
// datastore directory imgbuild-<id> its ISOs are uploaded to. Its reaper
// removes what a killed build left. The journal never holds the password:
// the reaper logs in with GOVC_PASSWORD (or the password in GOVC_URL).
const JournalKind = "vsphere"

// record writes the build's journal entry (see JournalKind).
func (b *buildEnv) record(ep *endpoint) error {
	where := map[string]string{
		"url":        ep.URL.String(),
		"username":   ep.Username,
		"insecure":   strconv.FormatBool(ep.Insecure),
		"datacenter": ep.Datacenter,
		"marker":     b.id,
	}
	_, err := b.job.Record(JournalKind, fmt.Sprintf("VMs marked %s=%s and datastore directory imgbuild-%s on %s", markerKey, b.id, b.id, ep), where)
	return err
}

type reaper struct{}

// login logs in to the entry's vCenter.
func (reaper) login(ctx context.Context, e journal.Entry) (*vcSession, error) {
	if e.Where["marker"] == "" {
		return nil, errors.New("the journal entry has no marker")
	}
	insecure := e.Where["insecure"] == "true"
	ep, err := resolveEndpoint(Connection{VCenterServer: e.Where["url"], Username: e.Where["username"], InsecureConnection: &insecure, Datacenter: e.Where["datacenter"]})
	if err != nil {
		return nil, fmt.Errorf("%v (the journal never holds the password: imgbuild cleanup logs in with GOVC_PASSWORD)", err)
	}
	return login(ctx, ep)
}

// markedVM is a VM found by a build's marker.
type markedVM struct {
	vm       *object.VirtualMachine
	name     string
	template bool
}

// Find implements journal.Reaper.
func (r reaper) Find(ctx context.Context, e journal.Entry) ([]string, error) {
	s, err := r.login(ctx, e)
	if err != nil {
		return nil, err
	}
	defer s.logout(context.WithoutCancel(ctx))
	vms, dirs, err := r.find(ctx, s, e)
	var out []string
	for _, m := range vms {
		kind := "VM"
		if m.template {
			kind = "template"
		}
		out = append(out, fmt.Sprintf("%s %s (marked %s=%s)", kind, m.name, markerKey, e.Where["marker"]))
	}
	for _, d := range dirs {
		out = append(out, "datastore directory "+d)
	}
	return out, err
}

// Remove implements journal.Reaper: the VMs (powered off first), then the
// datastore directory.
func (r reaper) Remove(ctx context.Context, e journal.Entry) error {
	s, err := r.login(ctx, e)
	if err != nil {
		return err
	}
	defer s.logout(context.WithoutCancel(ctx))
	vms, dirs, err := r.find(ctx, s, e)
	if err != nil {
		return err
	}
	b := &buildEnv{id: e.Where["marker"]} // destroyVM checks the marker again
	var errs []error
	for _, m := range vms {
		errs = append(errs, b.destroyVM(ctx, m.vm, m.name))
	}
	fm := object.NewFileManager(s.client.Client)
	for _, d := range dirs {
		t, err := fm.DeleteDatastoreFile(ctx, d, nil)
		if err == nil {
			err = t.Wait(ctx)
		}
		if err != nil && !fault.Is(err, &types.FileNotFound{}) {
			errs = append(errs, fmt.Errorf("removing datastore directory %s: %s", d, explain(err)))
		}
	}
	return errors.Join(errs...)
}

// find lists the VMs carrying the entry's marker, in every datacenter, and
// its datastore directories.
func (reaper) find(ctx context.Context, s *vcSession, e journal.Entry) ([]markedVM, []string, error) {
	c := s.client.Client
	m := view.NewManager(c)
	v, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, nil, fmt.Errorf("listing VMs: %s", explain(err))
	}
	defer v.Destroy(context.WithoutCancel(ctx))
	var all []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "config.extraConfig", "config.template"}, &all); err != nil {
		return nil, nil, fmt.Errorf("listing VMs: %s", explain(err))
	}
	marker := e.Where["marker"]
	var vms []markedVM
	for _, vm := range all {
		if vm.Config == nil {
			continue
		}
		for _, ov := range vm.Config.ExtraConfig {
			if o := ov.GetOptionValue(); o != nil && o.Key == markerKey && o.Value == marker {
				vms = append(vms, markedVM{vm: object.NewVirtualMachine(c, vm.Reference()), name: vm.Name, template: vm.Config.Template})
			}
		}
	}
	var dirs []string
	dss, err := find.NewFinder(c, false).DatastoreList(ctx, "/*/datastore/*")
	if err != nil && !isNotFound(err) {
		return vms, nil, fmt.Errorf("listing datastores: %s", explain(err))
	}
	for _, ds := range dss {
		p := "imgbuild-" + marker
		if _, err := ds.Stat(ctx, p); err == nil {
			dirs = append(dirs, ds.Path(p))
		}
	}
	return vms, dirs, nil
}
