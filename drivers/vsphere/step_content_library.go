package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/vapi/library"
	"github.com/vmware/govmomi/vapi/vcenter"
)

// stepContentLibrary imports the VM into a content library, as an OVF
// package or a VM template (VMTX). The item is part of the artifact: if the
// build fails, even in a post-processor, it is deleted.
type stepContentLibrary struct {
	env   *buildEnv
	vc    *stepConnect
	vm    *vmHandle
	place *stepPlacement // the library, and where a VM template goes

	// outputs
	item string // the library item's id
}

// Name implements step.Step.
func (s *stepContentLibrary) Name() string { return "import to content library" }

// MakesArtifact implements step.Artifact.
func (s *stepContentLibrary) MakesArtifact() bool { return true }

// Leftovers implements step.Leaver.
func (s *stepContentLibrary) Leftovers() []string {
	if s.item == "" {
		return nil
	}
	return []string{fmt.Sprintf("content library item %q (%s) in library %s", s.env.libraryItemName(), s.item, s.env.fin.ContentLibrary.Library)}
}

// Run implements step.Step.
func (s *stepContentLibrary) Run(ctx context.Context) error {
	b, place := s.env, s.place
	cl := b.fin.ContentLibrary
	rc, err := s.vc.sess.restClient(ctx)
	if err != nil {
		return err
	}
	m := vcenter.NewManager(rc)
	name := b.libraryItemName()
	kind := "VM template"
	if cl.OVF {
		kind = "OVF package"
	}
	b.say("importing %s into content library %s as %s %q", s.vm.path, cl.Library, kind, name)
	cctx, cancel := detached(ctx)
	defer cancel()
	var id string
	if cl.OVF {
		id, err = m.CreateOVF(cctx, vcenter.OVF{
			Spec:   vcenter.CreateSpec{Name: name, Description: cl.Description},
			Source: vcenter.ResourceID{Type: "VirtualMachine", Value: s.vm.vm.Reference().Value},
			Target: vcenter.LibraryTarget{LibraryID: place.library.ID},
		})
	} else {
		placement := &vcenter.Placement{Folder: place.folder.Reference().Value, ResourcePool: place.pool.Reference().Value}
		if place.host != nil {
			placement.Host = place.host.Reference().Value
		}
		t := vcenter.Template{Name: name, Description: cl.Description, Library: place.library.ID, SourceVM: s.vm.vm.Reference().Value, Placement: placement}
		if place.ds != nil {
			t.VMHomeStorage = &vcenter.DiskStorage{Datastore: place.ds.Reference().Value}
		}
		id, err = m.CreateTemplate(cctx, t)
	}
	if id != "" {
		s.item = id
	}
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("importing %s into content library %s: %s", s.vm.path, cl.Library, explain(err)))
	}
	b.say("content library %s now has %s %q (%s)", cl.Library, kind, name, id)
	return ctxErr(ctx, nil)
}

// Cleanup removes the library item when the build failed.
func (s *stepContentLibrary) Cleanup(ctx context.Context, failed bool) error {
	b := s.env
	if !failed || s.item == "" {
		return nil
	}
	rc, err := s.vc.sess.restClient(ctx)
	if err != nil {
		return err
	}
	b.say("deleting content library item %q (the build failed)", b.libraryItemName())
	if err := library.NewManager(rc).DeleteLibraryItem(ctx, &library.Item{ID: s.item}); err != nil {
		return fmt.Errorf("deleting content library item %s: %s", s.item, explain(err))
	}
	s.item = ""
	return nil
}
