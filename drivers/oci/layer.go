package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imgbuild/imgbuild/drivers/diskpost"
)

// layer is a gzip-compressed layer in a file, whose digest (of the
// compressed bytes) and diff ID (of the tar) were taken as it was
// written, so go-containerregistry reads it only to copy it.
type layer struct {
	ctx       context.Context
	path      string
	digest    v1.Hash
	diffID    v1.Hash
	size      int64
	mediaType types.MediaType
}

// Digest implements partial.CompressedLayer.
func (l *layer) Digest() (v1.Hash, error) { return l.digest, nil }

// DiffID implements partial.WithDiffID.
func (l *layer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Size implements partial.CompressedLayer.
func (l *layer) Size() (int64, error) { return l.size, nil }

// MediaType implements partial.CompressedLayer.
func (l *layer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

// Compressed implements partial.CompressedLayer: the file, read until the
// context ends.
func (l *layer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{diskpost.ContextReader(l.ctx, f), f}, nil
}

// compressLayer compresses the tar at src into the file dst with gzip at
// level on every core (diskpost.NewGzip), taking both digests on the way; progress gets
// the tar's bytes read and its size.
func compressLayer(ctx context.Context, src, dst string, level int, mediaType types.MediaType, progress func(done, total int64)) (*layer, v1.Layer, error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, nil, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return nil, nil, err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, nil, err
	}
	defer out.Close()
	compressed, tarSum := sha256.New(), sha256.New()
	counter := &countingWriter{}
	zw, err := diskpost.NewGzip(io.MultiWriter(out, compressed, counter), level)
	if err != nil {
		return nil, nil, err
	}
	buf := make([]byte, 1<<20)
	var done int64
	lastPct := int64(-1)
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, context.Cause(ctx)
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			tarSum.Write(buf[:n])
			if _, err := zw.Write(buf[:n]); err != nil {
				return nil, nil, fmt.Errorf("compressing %s: %w", src, err)
			}
			done += int64(n)
			if pct := done * 100 / max(fi.Size(), 1); pct != lastPct && progress != nil {
				lastPct = pct
				progress(done, fi.Size())
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", src, rerr)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, nil, fmt.Errorf("compressing %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return nil, nil, err
	}
	l := &layer{
		ctx: ctx, path: dst, size: counter.n, mediaType: mediaType,
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(compressed.Sum(nil))},
		diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(tarSum.Sum(nil))},
	}
	v1l, err := partial.CompressedToLayer(l)
	return l, v1l, err
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
