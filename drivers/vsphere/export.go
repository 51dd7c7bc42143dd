package vsphere

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/vmware/govmomi/nfc"
	"github.com/vmware/govmomi/ovf"
	"github.com/vmware/govmomi/vim25/progress"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// exportPlan is where and how the VM is exported, decided before anything
// is created.
type exportPlan struct {
	outs     *output.Set
	rel      string // the output directory, relative to the workspace
	dir      string // absolute
	shownDir string
	name     string // base name of the files
	format   string // ovf or ova
	manifest string // sha256, sha512 or none
}

// planExport decides the export's files and checks that the output
// directory holds nothing the build may not replace (a previous export of
// this build is replaced; files imgbuild did not make never are).
func (b *buildEnv) planExport() (*exportPlan, error) {
	e := b.fin.Export
	p := &exportPlan{name: e.Name, format: e.Format, manifest: e.Manifest}
	if p.name == "" {
		p.name = b.name
	}
	if p.format == "" {
		p.format = "ovf"
	}
	if p.manifest == "" {
		p.manifest = "sha256"
	}
	dir := e.OutputDirectory
	if dir == "" {
		dir = "output/{build}"
	}
	p.outs = b.job.OutputSet().Forced(e.Force)
	p.rel = output.Expand(dir, b.job.Name, b.job.Driver)
	if err := p.outs.Check(p.rel, "output_directory"); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	p.dir = p.outs.Abs(p.rel)
	p.shownDir = p.outs.Show(p.dir)
	return p, nil
}

// newManifestHash returns the manifest's hash and its name in the .mf
// file, or nil for none.
func (p *exportPlan) newHash() (hash.Hash, string) {
	switch p.manifest {
	case "sha256":
		return sha256.New(), "SHA256"
	case "sha512":
		return sha512.New(), "SHA512"
	}
	return nil, ""
}

// exportRun is one export in progress: what the cleanup must undo.
type exportRun struct {
	lease  *nfc.Lease     // open until completed
	staged *output.Staged // the output directory being filled
	placed *exportPlan    // the output directory moved into place
}

// export downloads the VM's disks through an export lease, has vSphere
// describe the VM as OVF, writes the manifest and, for ova, packs the
// files into one tar. Files are written to a scratch directory and moved
// into place once all are complete.
func (s *stepExport) export(ctx context.Context) error {
	b, run := s.env, &s.run
	p := s.place.export
	staged, err := p.outs.StageDir(p.rel, "output_directory")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	run.staged = staged
	tmp := staged.Path()

	cctx, cancel := detached(ctx)
	lease, err := s.vm.vm.Export(cctx)
	cancel()
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("exporting %s: %s", s.vm.path, explain(err)))
	}
	run.lease = lease
	info, err := lease.Wait(ctx, nil)
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("exporting %s: waiting for the export lease: %s", s.vm.path, explain(err)))
	}
	updater := lease.StartUpdater(ctx, info)
	defer updater.Done()

	type written struct{ name, sum string }
	var files []written
	cdp := types.OvfCreateDescriptorParams{Name: p.name}
	for _, item := range info.Items {
		if path.Ext(item.Path) != ".vmdk" {
			continue
		}
		name := p.name + "-" + path.Base(item.Path)
		h, _ := p.newHash()
		opts := soap.Download{Progress: progress.Tee(item, b.bytesSink(ctx, "export "+name, item.Size))}
		if h != nil {
			opts.Writer = h
		}
		dst := filepath.Join(tmp, name)
		if err := lease.DownloadFile(ctx, dst, item, opts); err != nil {
			return ctxErr(ctx, fmt.Errorf("exporting %s: downloading %s: %s", s.vm.path, item.Path, explain(err)))
		}
		fi, err := os.Stat(dst)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		cdp.OvfFiles = append(cdp.OvfFiles, types.OvfFile{DeviceId: item.DeviceId, Path: name, Size: fi.Size()})
		files = append(files, written{name, hexSum(h)})
	}
	if len(cdp.OvfFiles) == 0 {
		return fmt.Errorf("exporting %s: the export lease offered no disk", s.vm.path)
	}
	if err := lease.Complete(ctx); err != nil {
		return ctxErr(ctx, fmt.Errorf("exporting %s: completing the export lease: %s", s.vm.path, explain(err)))
	}
	run.lease = nil

	desc, err := ovf.NewManager(s.vm.vm.Client()).CreateDescriptor(ctx, s.vm.vm, cdp)
	if err == nil && len(desc.Error) > 0 {
		err = errors.New(desc.Error[0].LocalizedMessage)
	}
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("exporting %s: describing it as OVF: %s", s.vm.path, explain(err)))
	}
	for _, w := range desc.Warning {
		b.job.UI.Warn("export: %s", w.LocalizedMessage)
	}
	ovfName := p.name + ".ovf"
	h, algo := p.newHash()
	if err := writeFile(filepath.Join(tmp, ovfName), desc.OvfDescriptor, h); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	order := []string{ovfName}
	if h != nil {
		var mf strings.Builder
		fmt.Fprintf(&mf, "%s(%s)= %s\n", algo, ovfName, hexSum(h))
		for _, f := range files {
			fmt.Fprintf(&mf, "%s(%s)= %s\n", algo, f.name, f.sum)
		}
		if err := writeFile(filepath.Join(tmp, p.name+".mf"), mf.String(), nil); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		order = append(order, p.name+".mf")
	}
	for _, f := range files {
		order = append(order, f.name)
	}
	if p.format == "ova" {
		ova := p.name + ".ova"
		b.say("packing %s", ova)
		if err := writeOVA(ctx, filepath.Join(tmp, ova), tmp, order); err != nil {
			return fmt.Errorf("export: packing %s: %w", ova, err)
		}
		order = []string{ova}
	}
	if _, err := staged.Place(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	run.staged, run.placed = nil, p
	for _, n := range order {
		s.files = append(s.files, b.shown(filepath.Join(p.dir, n)))
	}
	b.say("exported %s to %s: %s", s.vm.path, p.shownDir, strings.Join(order, ", "))
	return nil
}

// undo removes what an export left: the lease and the files being
// written; and, once the build is over, keeps the output directory, or
// removes it (putting back the one it replaced) when the build failed.
func (run *exportRun) undo(ctx context.Context, failed bool) error {
	var errs []error
	if run.lease != nil {
		if err := run.lease.Abort(ctx, nil); err != nil {
			errs = append(errs, fmt.Errorf("aborting the export lease: %s", explain(err)))
		}
		run.lease = nil
	}
	if run.staged != nil {
		errs = append(errs, run.staged.Discard())
		run.staged = nil
	}
	if p := run.placed; p != nil {
		errs = append(errs, p.outs.FinishPath(p.rel, failed))
		run.placed = nil
	}
	return errors.Join(errs...)
}

func hexSum(h hash.Hash) string {
	if h == nil {
		return ""
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func writeFile(name, content string, h hash.Hash) error {
	if h != nil {
		h.Write([]byte(content))
	}
	return os.WriteFile(name, []byte(content), 0o644)
}

// writeOVA writes the files of dir named in order into one tar file: the
// descriptor first, as the OVF specification requires.
func writeOVA(ctx context.Context, dst, dir string, order []string) (err error) {
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(out)
	for _, n := range order {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		fi, err := f.Stat()
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: fi.Size(), ModTime: fi.ModTime(), Format: tar.FormatUSTAR, Typeflag: tar.TypeReg})
		}
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		f.Close()
		if err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			return err
		}
	}
	return tw.Close()
}
