package qemu

import (
	"context"
	"fmt"
	"os"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/output"
)

// stepReadKernel copies the kernel and initrd the image now holds (/vmlinuz
// and /initrd.img, as Debian links them) to the output directory, under
// temporary names until stepPlace moves them in, so that they match its
// modules even if provisioning upgraded the kernel. An image without them
// keeps the pair it was booted with. The build runs it only when the
// machine booted a kernel directly. The files are part of the artifact:
// its cleanup removes them if the build fails.
type stepReadKernel struct {
	ui      *event.UI
	out     *output.Dir
	disk    *stepInspect // the kernel and initrd the machine was booted with
	machine *stepStartMachine
	conn    *connection

	// outputs, absolute: where they are written until placed, and their
	// names in the output directory
	kernel, initrd string
	names          []string
}

// Name implements step.Step.
func (s *stepReadKernel) Name() string { return "read kernel" }

// MakesArtifact implements step.Artifact.
func (s *stepReadKernel) MakesArtifact() bool { return true }

// Run implements step.Step.
func (s *stepReadKernel) Run(ctx context.Context) error {
	ctx, done := guard(ctx, s.machine.machine, s.conn)
	defer done()
	comm := s.conn.get()
	type pair struct{ guest, input, name, tmp string }
	files := []*pair{{guest: "/vmlinuz", input: s.disk.kernel, name: "vmlinuz"}}
	if s.disk.initrd != "" {
		files = append(files, &pair{guest: "/initrd.img", input: s.disk.initrd, name: "initrd.img"})
	}
	from := "read back from the machine (" + files[0].guest
	if len(files) > 1 {
		from += " and " + files[1].guest
	}
	from += ")"
	var failed error
	for _, f := range files {
		tmp, err := s.out.Begin(f.name)
		if err != nil {
			return err
		}
		f.tmp = tmp
		if failed == nil {
			failed = download(ctx, comm, f.guest, tmp)
		}
	}
	if ctx.Err() != nil {
		return causeOf(ctx, context.Cause(ctx))
	}
	if failed != nil {
		from = "the ones it was booted with (the machine has no " + files[0].guest + ")"
		for _, f := range files {
			if err := output.CopyFile(f.input, f.tmp); err != nil {
				return fmt.Errorf("copying %s: %w", f.input, err)
			}
		}
	}
	for _, f := range files {
		s.names = append(s.names, f.name)
		if f.name == "vmlinuz" {
			s.kernel = f.tmp
		} else {
			s.initrd = f.tmp
		}
	}
	s.ui.Say("kernel and initrd for direct boot: %s", from)
	return nil
}

// Cleanup removes the output directory's files if the build failed.
func (s *stepReadKernel) Cleanup(ctx context.Context, failed bool) error {
	return s.out.Cleanup(failed)
}

// Leftovers implements step.Leaver.
func (s *stepReadKernel) Leftovers() []string { return s.out.Leftovers() }

func download(ctx context.Context, comm engine.Communicator, src, dst string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	err = comm.Download(ctx, src, f, engine.Transfer{})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
