package diskpost

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/klauspost/pgzip"

	"github.com/imgbuild/imgbuild/engine/ctxio"
)

// Member is one file of an archive: Data, or the file at Path (Length
// bytes from Offset when Length is set: a chunk of it).
type Member struct {
	Name   string
	Path   string
	Data   []byte
	Offset int64
	Length int64
}

// ArchiveOptions say how WriteArchive writes.
type ArchiveOptions struct {
	// Gzip compresses the archive with gzip, in blocks on every core
	// (klauspost/pgzip: the output is one ordinary gzip stream); Level
	// is its level, 1 (fast) to 9 (small).
	Gzip  bool
	Level int
	// Format is the tar format: tar.FormatUSTAR for OVF (the OVF
	// specification names USTAR; each member must then be under 8 GiB),
	// else PAX.
	Format tar.Format
	// Progress receives the bytes of files written so far and their total.
	Progress func(done, total int64)
}

// WriteArchive writes members, in order, as a tar archive to w and
// returns the hex SHA-256 of what it wrote. Member times are the files'
// own (the epoch for data), owners root, modes 0644.
func WriteArchive(ctx context.Context, w io.Writer, members []Member, o ArchiveOptions) (string, error) {
	sum := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, sum), 1<<20)
	var out io.Writer = bw
	var zw *pgzip.Writer
	if o.Gzip {
		var err error
		if zw, err = NewGzip(bw, o.Level); err != nil {
			return "", err
		}
		out = zw
	}
	format := o.Format
	if format == tar.FormatUnknown {
		format = tar.FormatPAX
	}
	tw := tar.NewWriter(out)
	var total int64
	for i, m := range members {
		if m.Path == "" {
			continue
		}
		if m.Length == 0 {
			fi, err := os.Stat(m.Path)
			if err != nil {
				return "", err
			}
			members[i].Length = fi.Size() - m.Offset
		}
		total += members[i].Length
	}
	p := &progress{report: o.Progress, total: total}
	for _, m := range members {
		if err := writeMember(ctx, tw, m, format, p); err != nil {
			return "", fmt.Errorf("%s: %w", m.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return "", err
		}
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

func writeMember(ctx context.Context, tw *tar.Writer, m Member, format tar.Format, p *progress) error {
	hdr := &tar.Header{Name: m.Name, Mode: 0o644, Typeflag: tar.TypeReg, Format: format, ModTime: time.Unix(0, 0), Uname: "root", Gname: "root"}
	var src io.Reader
	if m.Path != "" {
		f, err := os.Open(m.Path)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		hdr.Size, hdr.ModTime = m.Length, fi.ModTime().Truncate(time.Second)
		src = io.NewSectionReader(f, m.Offset, m.Length)
	} else {
		hdr.Size = int64(len(m.Data))
		src = bytes.NewReader(m.Data)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	return ctxio.Copy(ctx, tw, src, make([]byte, 1<<20), func(n int) {
		if m.Path != "" {
			p.add(int64(n))
		}
	})
}

// progress reports bytes written at each new whole percent.
type progress struct {
	report      func(done, total int64)
	done, total int64
	lastPct     int64
}

func (p *progress) add(n int64) {
	p.done += n
	if p.report == nil {
		return
	}
	if pct := p.done * 100 / max(p.total, 1); pct != p.lastPct || p.done == p.total {
		p.lastPct = pct
		p.report(p.done, p.total)
	}
}

// NewGzip is a gzip writer to w at level (0 is gzip's default) that
// compresses on every core: 1 MiB blocks, two per core in flight
// (klauspost/pgzip; the output is one ordinary gzip stream).
func NewGzip(w io.Writer, level int) (*pgzip.Writer, error) {
	if level == 0 {
		level = pgzip.DefaultCompression
	}
	zw, err := pgzip.NewWriterLevel(w, level)
	if err != nil {
		return nil, err
	}
	if err := zw.SetConcurrency(1<<20, 2*runtime.GOMAXPROCS(0)); err != nil {
		return nil, err
	}
	return zw, nil
}

// ContextReader reads r until ctx is done.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}
