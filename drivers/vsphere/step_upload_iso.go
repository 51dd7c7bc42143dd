package vsphere

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// parseChecksum parses iso_checksum: "sha256:<hex>", "sha512:<hex>" or
// "none" (algo "").
func parseChecksum(s string) (algo string, sum []byte, err error) {
	if s == "none" {
		return "", nil, nil
	}
	algo, h, ok := strings.Cut(s, ":")
	if !ok {
		return "", nil, fmt.Errorf("%q is not a checksum: write \"sha256:<hex>\" or \"sha512:<hex>\" (or \"none\")", s)
	}
	want := map[string]int{"sha256": sha256.Size, "sha512": sha512.Size}[strings.ToLower(algo)]
	if want == 0 {
		return "", nil, fmt.Errorf("%q: the algorithm must be sha256 or sha512, not %q", s, algo)
	}
	sum, err = hex.DecodeString(h)
	if err != nil || len(sum) != want {
		return "", nil, fmt.Errorf("%q: a %s checksum is %d hexadecimal digits", s, algo, 2*want)
	}
	return strings.ToLower(algo), sum, nil
}

func newChecksumHash(algo string) hash.Hash {
	switch algo {
	case "sha256":
		return sha256.New()
	case "sha512":
		return sha512.New()
	}
	return nil
}

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

// upload fetches, checks and uploads the ISO; s.uploaded is set as soon as
// the upload started, so that a partial file is deleted too.
func (s *stepUploadISO) upload(ctx context.Context) (string, error) {
	b := s.env
	b, ds := s.env, s.place.ds
	algo, want, _ := parseChecksum(b.iso.ISOChecksum)
	local, err := s.fetchISO(ctx)
	if err != nil {
		return "", err
	}
	f, err := os.Open(local)
	if err != nil {
		return "", fmt.Errorf("iso_url: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if algo != "" {
		h := newChecksumHash(algo)
		if _, err := io.Copy(h, &ctxReader{ctx, f}); err != nil {
			return "", fmt.Errorf("iso_url: reading %s: %w", local, err)
		}
		if got := h.Sum(nil); string(got) != string(want) {
			return "", fmt.Errorf("iso_url %s has %s %x, not %x as iso_checksum says: the download is damaged or the checksum is for another file", redactURL(b.iso.ISOURL), algo, got, want)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
	} else {
		b.job.UI.Warn("iso_checksum = \"none\": %s is not verified", redactURL(b.iso.ISOURL))
	}
	name := path.Base(filepath.ToSlash(local))
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

// fetchISO returns a local file holding iso_url: the file itself for a
// path or file:// URL, else a download into the build's scratch directory.
func (s *stepUploadISO) fetchISO(ctx context.Context) (string, error) {
	b := s.env
	raw := b.iso.ISOURL
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || len(u.Scheme) == 1 {
		p := raw
		if !filepath.IsAbs(p) {
			p = filepath.Join(b.workspace, p)
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("iso_url %s: %w", raw, err)
		}
		return p, nil
	}
	switch u.Scheme {
	case "file":
		if _, err := os.Stat(u.Path); err != nil {
			return "", fmt.Errorf("iso_url %s: %w", raw, err)
		}
		return u.Path, nil
	case "http", "https":
	default:
		return "", fmt.Errorf("iso_url %s: the scheme must be http, https or file", redactURL(raw))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("downloading iso_url %s: %w", redactURL(raw), err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("downloading iso_url %s: %s", redactURL(raw), res.Status)
	}
	dst := filepath.Join(b.job.WorkDir, "download.iso")
	out, err := os.Create(dst)
	if err != nil {
		return "", err
	}
	total := res.ContentLength
	pw := &progressWriter{w: out, report: func(n int64) { b.job.UI.Progress("download ISO", n, total, "bytes") }}
	_, err = io.Copy(pw, res.Body)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("downloading iso_url %s: %w", redactURL(raw), err)
	}
	return dst, nil
}

// ctxReader stops reading when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

// Read implements io.Reader.
func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// progressWriter reports bytes written.
type progressWriter struct {
	w      io.Writer
	n      int64
	report func(int64)
}

// Write implements io.Writer.
func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.report(p.n)
	return n, err
}
