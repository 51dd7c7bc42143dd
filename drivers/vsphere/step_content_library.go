package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/vapi/library"
	"github.com/vmware/govmomi/vapi/vcenter"

	"github.com/imgbuild/imgbuild/engine/step"
)

// contentLibraryStep imports the VM into a content library, as an OVF
// package or a VM template (VMTX). The item is part of the artifact: if the
// build fails, even in a post-processor, it is deleted.
func (b *build) contentLibraryStep() step.Step {
	return &step.Func{
		StepName:  "import to content library",
		Artifact:  true,
		RunFunc:   b.importToLibrary,
		CleanFunc: b.deleteLibraryItem,
		LeftFunc: func() []string {
			if b.libraryItem == "" {
				return nil
			}
			return []string{fmt.Sprintf("content library item %q (%s) in library %s", b.libraryItemName(), b.libraryItem, b.fin.ContentLibrary.Library)}
		},
	}
}

func (b *build) importToLibrary(ctx context.Context) error {
	cl := b.fin.ContentLibrary
	rc, err := b.sess.restClient(ctx)
	if err != nil {
		return err
	}
	m := vcenter.NewManager(rc)
	name := b.libraryItemName()
	kind := "VM template"
	if cl.OVF {
		kind = "OVF package"
	}
	b.say("importing %s into content library %s as %s %q", b.vmPath, cl.Library, kind, name)
	cctx, cancel := detached(ctx)
	defer cancel()
	var id string
	if cl.OVF {
		id, err = m.CreateOVF(cctx, vcenter.OVF{
			Spec:   vcenter.CreateSpec{Name: name, Description: cl.Description},
			Source: vcenter.ResourceID{Type: "VirtualMachine", Value: b.vm.Reference().Value},
			Target: vcenter.LibraryTarget{LibraryID: b.library.ID},
		})
	} else {
		placement := &vcenter.Placement{Folder: b.folder.Reference().Value, ResourcePool: b.pool.Reference().Value}
		if b.host != nil {
			placement.Host = b.host.Reference().Value
		}
		t := vcenter.Template{Name: name, Description: cl.Description, Library: b.library.ID, SourceVM: b.vm.Reference().Value, Placement: placement}
		if b.ds != nil {
			t.VMHomeStorage = &vcenter.DiskStorage{Datastore: b.ds.Reference().Value}
		}
		id, err = m.CreateTemplate(cctx, t)
	}
	if id != "" {
		b.libraryItem = id
	}
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("importing %s into content library %s: %s", b.vmPath, cl.Library, explain(err)))
	}
	b.say("content library %s now has %s %q (%s)", cl.Library, kind, name, id)
	return ctxErr(ctx, nil)
}

// deleteLibraryItem removes the library item when the build failed.
func (b *build) deleteLibraryItem(ctx context.Context, failed bool) error {
	if !failed || b.libraryItem == "" {
		return nil
	}
	rc, err := b.sess.restClient(ctx)
	if err != nil {
		return err
	}
	b.say("deleting content library item %q (the build failed)", b.libraryItemName())
	if err := library.NewManager(rc).DeleteLibraryItem(ctx, &library.Item{ID: b.libraryItem}); err != nil {
		return fmt.Errorf("deleting content library item %s: %s", b.libraryItem, explain(err))
	}
	b.libraryItem = ""
	return nil
}
