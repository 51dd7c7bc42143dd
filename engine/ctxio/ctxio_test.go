package ctxio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestCopyCopiesEveryChunkAndReportsEach(t *testing.T) {
	var dst bytes.Buffer
	var sizes []int
	err := Copy(context.Background(), &dst, strings.NewReader("abcdefghij"), make([]byte, 4), func(n int) { sizes = append(sizes, n) })
	if err != nil {
		t.Fatal(err)
	}
	if dst.String() != "abcdefghij" || !reflect.DeepEqual(sizes, []int{4, 4, 2}) {
		t.Errorf("copied %q in chunks %v, want all 10 bytes in 4, 4, 2", dst.String(), sizes)
	}
}

// cancelling cancels its context once it has been read from.
type cancelling struct {
	r      io.Reader
	cancel context.CancelCauseFunc
}

func (c *cancelling) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.cancel(errors.New("the build was cancelled"))
	return n, err
}

func TestCopyStopsWithTheContextsCauseBetweenChunks(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var dst bytes.Buffer
	err := Copy(ctx, &dst, &cancelling{strings.NewReader("abcdefghij"), cancel}, make([]byte, 4), nil)
	if err == nil || err.Error() != "the build was cancelled" {
		t.Fatalf("err = %v, want the context's cause", err)
	}
	if dst.String() != "abcd" {
		t.Errorf("copied %q, want only the chunk read before the cancel", dst.String())
	}
}

type failing struct{ err error }

func (f failing) Read([]byte) (int, error)  { return 0, f.err }
func (f failing) Write([]byte) (int, error) { return 0, f.err }

func TestCopyReturnsReadAndWriteErrorsAsTheyAre(t *testing.T) {
	readErr := errors.New("disk read failed")
	if err := Copy(context.Background(), io.Discard, failing{readErr}, make([]byte, 4), nil); err != readErr {
		t.Errorf("read: err = %v, want %v", err, readErr)
	}
	writeErr := errors.New("no space left on device")
	if err := Copy(context.Background(), failing{writeErr}, strings.NewReader("abc"), make([]byte, 4), nil); err != writeErr {
		t.Errorf("write: err = %v, want %v", err, writeErr)
	}
}
