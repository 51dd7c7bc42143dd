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
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vmware/govmomi/nfc"
	"github.com/vmware/govmomi/ovf"
	"github.com/vmware/govmomi/vim25/progress"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// exportPlan is where and how the VM is exported, decided before anything
// is created.
type exportPlan struct {
	dir      string // absolute
	shownDir string
	name     string // base name of the files
	format   string // ovf or ova
	manifest string // sha256, sha512 or none
	force    bool
}

// planExport decides the export's files and checks they do not exist yet.
func (b *buildEnv) planExport() (*exportPlan, error) {
	e := b.fin.Export
	p := &exportPlan{name: e.Name, format: e.Format, manifest: e.Manifest, force: e.Force}
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
		dir = filepath.Join("output", b.job.Name)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(b.workspace, dir)
	}
	p.dir = filepath.Clean(dir)
	p.shownDir = b.shown(p.dir)
	if p.force {
		return p, nil
	}
	var clash []string
	for _, n := range []string{p.name + ".ovf", p.name + ".ova", p.name + ".mf"} {
		if _, err := os.Stat(filepath.Join(p.dir, n)); err == nil {
			clash = append(clash, n)
		}
	}
	disks, _ := filepath.Glob(filepath.Join(p.dir, globEscape(p.name)+"-*.vmdk"))
	for _, d := range disks {
		clash = append(clash, filepath.Base(d))
	}
	if len(clash) > 0 {
		sort.Strings(clash)
		return nil, fmt.Errorf("export: %s already holds %s: remove them, choose another output_directory or name, or set force = True in export", p.shownDir, strings.Join(clash, ", "))
	}
	return p, nil
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
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
	lease *nfc.Lease // open until completed
	tmp   string     // scratch directory beside the output
	moved []string   // files moved into the output directory
}

// export downloads the VM's disks through an export lease, has vSphere
// describe the VM as OVF, writes the manifest and, for ova, packs the
// files into one tar. Files are written to a scratch directory and moved
// into place once all are complete.
func (s *stepExport) export(ctx context.Context) error {
	b, run := s.env, &s.run
	p := s.place.export
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return fmt.Errorf("export: creating %s: %w", p.shownDir, err)
	}
	tmp, err := os.MkdirTemp(p.dir, ".imgbuild-export-")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	run.tmp = tmp

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
		opts := soap.Download{Progress: progress.Tee(item, b.bytesSink("export "+name, item.Size))}
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
	for _, n := range order {
		dst := filepath.Join(p.dir, n)
		if err := os.Rename(filepath.Join(tmp, n), dst); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		run.moved = append(run.moved, dst)
		s.files = append(s.files, b.shown(dst))
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	run.tmp = ""
	b.say("exported %s to %s: %s", s.vm.path, p.shownDir, strings.Join(order, ", "))
	return nil
}

// undo removes what an export left: the lease, the scratch directory and,
// when the build failed, the files moved into place.
func (run *exportRun) undo(ctx context.Context, failed bool) error {
	var errs []error
	if run.lease != nil {
		if err := run.lease.Abort(ctx, nil); err != nil {
			errs = append(errs, fmt.Errorf("aborting the export lease: %s", explain(err)))
		}
		run.lease = nil
	}
	if run.tmp != "" {
		if err := os.RemoveAll(run.tmp); err != nil {
			errs = append(errs, err)
		}
		run.tmp = ""
	}
	if failed {
		for _, f := range run.moved {
			if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		run.moved = nil
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
