package vsphere

import "context"

// stepExport exports the VM to OVF or OVA files (export), as the placement
// step planned. The files are part of the artifact: if the build fails,
// even in a post-processor, they are removed.
type stepExport struct {
	env   *buildEnv
	vm    *vmHandle
	place *stepPlacement // the export's plan

	// outputs
	run   exportRun
	files []string // as shown, relative to the workspace when inside it
}

// Name implements step.Step.
func (s *stepExport) Name() string { return "export" }

// MakesArtifact implements step.Artifact.
func (s *stepExport) MakesArtifact() bool { return true }

// Run implements step.Step.
func (s *stepExport) Run(ctx context.Context) error { return s.export(ctx) }

// Cleanup implements step.Cleaner.
func (s *stepExport) Cleanup(ctx context.Context, failed bool) error { return s.run.undo(ctx, failed) }

// Leftovers implements step.Leaver.
func (s *stepExport) Leftovers() []string {
	b, run := s.env, &s.run
	var out []string
	if run.lease != nil {
		out = append(out, "an export lease on "+s.vm.path)
	}
	if run.staged != nil {
		out = append(out, "directory "+b.shown(run.staged.Path()))
	}
	if run.placed != nil {
		out = append(out, "output directory "+run.placed.shownDir)
	}
	return out
}
