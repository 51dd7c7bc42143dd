package vsphere

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/drivers/iso"
)

// stepUploadISO fetches iso_url, checks it against iso_checksum and uploads
// it to the datastore, into a directory of its own for this build. The
// cleanup deletes it when the build failed or the CD-ROM drives are
// removed (remove_cdrom): nothing refers to it then.
type stepUploadISO struct {
	env   *buildEnv
	place *stepPlacement // the datastore

	// outputs
	uploaded string // its path on the datastore, once the upload started
	file     string // its datastore path ("[ds] dir/x.iso"), once uploaded
}

// Name implements step.Step.
func (s *stepUploadISO) Name() string { return "upload ISO" }

// Run implements step.Step.
func (s *stepUploadISO) Run(ctx context.Context) error {
	p, err := s.upload(ctx)
	if err != nil {
		return ctxErr(ctx, err)
	}
	s.file = p
	return nil
}

// Cleanup implements step.Cleaner.
func (s *stepUploadISO) Cleanup(ctx context.Context, failed bool) error {
	b := s.env
	b, ds := s.env, s.place.ds
	if s.uploaded == "" || (!failed && !b.iso.RemoveCDROM) {
		return nil
	}
	b.say("deleting %s", ds.Path(s.uploaded))
	fm := ds.NewFileManager(s.place.inv.dc, true)
	if err := fm.Delete(ctx, path.Dir(s.uploaded)); err != nil && !fault.Is(err, &types.FileNotFound{}) {
		return fmt.Errorf("deleting %s: %s", ds.Path(path.Dir(s.uploaded)), explain(err))
	}
	s.uploaded = ""
	return nil
}

// Leftovers implements step.Leaver.
func (s *stepUploadISO) Leftovers() []string {
	if s.uploaded == "" {
		return nil
	}
	ds := s.place.ds
	return []string{"file " + ds.Path(path.Dir(s.uploaded)) + " on datastore " + datastoreNameOf(context.Background(), ds)}
}

// upload fetches and checks the ISO (drivers/iso: a workspace file, or a
// download kept in the cache every run shares) and uploads it;
// s.uploaded is set as soon as the upload started, so that a partial file
// is deleted too.
func (s *stepUploadISO) upload(ctx context.Context) (string, error) {
	b, ds := s.env, s.place.ds
	got, err := iso.Fetch(ctx, iso.Request{
		URLs: []string{b.iso.ISOURL}, Checksum: b.iso.ISOChecksum, Workspace: b.workspace,
		Progress: func(what string, done, total int64) { b.job.UI.Progress(what, done, total, "bytes") },
		Say:      b.say, Warn: b.job.UI.Warn,
	})
	if err != nil {
		return "", err
	}
	f, err := os.Open(got.Path)
	if err != nil {
		return "", fmt.Errorf("iso_url: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	name := path.Base(filepath.ToSlash(got.Path))
	if u, err := url.Parse(b.iso.ISOURL); err == nil && u.Scheme != "" && path.Base(u.Path) != "" && path.Base(u.Path) != "/" {
		name = path.Base(u.Path)
	}
	dst := path.Join("imgbuild-"+b.id, name)
	b.say("uploading %s (%d bytes) to %s", name, fi.Size(), ds.Path(dst))
	s.uploaded = dst
	err = ds.Upload(ctx, f, dst, &soap.Upload{
		Type: "application/octet-stream", Method: "PUT", ContentLength: fi.Size(),
		Progress: b.bytesSink(ctx, "upload "+name, fi.Size()),
	})
	if err != nil {
		return "", fmt.Errorf("uploading %s to %s: %s", name, ds.Path(dst), explain(err))
	}
	return ds.Path(dst), nil
}
