// Package ctxio copies data so that a cancelled build stops between
// chunks: Copy is the read loop behind copying a file into a local build's
// directory, writing a member of a disk archive (ova, vagrant) and hashing
// a disk or an ISO. It knows no driver.
package ctxio

import (
	"context"
	"io"
)

// Copy copies src to dst through buf until src ends, checking ctx before
// each read: once ctx ends it stops with ctx's cause. each, when not nil,
// is called with the size of every chunk written. A read or write error
// is returned as is.
func Copy(ctx context.Context, dst io.Writer, src io.Reader, buf []byte, each func(n int)) error {
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return err
			}
			if each != nil {
				each(n)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
