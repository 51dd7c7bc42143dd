package qemuimg

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// dataDisk makes a raw disk of size bytes in dir with a pattern written at
// its start, so that a conversion that loses data shows in qemu-img compare.
func dataDisk(t *testing.T, dir string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, "in.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte(strings.Repeat("imgbuild", 8192)))
	f.Truncate(size)
	f.Close()
	return p
}

func TestConvertWritesEveryFormatAPlatformTakesWithItsOptions(t *testing.T) {
	testkit.RequireProgram(t, "qemu-img", "qemu-utils")
	ctx := context.Background()
	dir := t.TempDir()
	in := dataDisk(t, dir, 8<<20)
	for _, c := range []struct {
		format  string
		options []string
		size    int64
		check   bool // qemu-img check can check it
	}{
		{format: "vmdk", options: []string{"subformat=streamOptimized"}, check: true},
		{format: "vmdk", options: []string{"subformat=monolithicSparse", "adapter_type=lsilogic"}, check: true},
		{format: "vpc", options: []string{"subformat=fixed", "force_size=on"}, size: 12 << 20},
		{format: "vhdx", options: []string{"subformat=dynamic"}, check: true},
		{format: "qcow2", size: 16 << 20, check: true},
	} {
		t.Run(c.format+strings.Join(c.options, ","), func(t *testing.T) {
			out := filepath.Join(dir, "out."+c.format)
			if err := Convert(ctx, ConvertOptions{In: in, InFormat: "raw", Out: out, Format: c.format, Options: c.options, Size: c.size}); err != nil {
				t.Fatal(err)
			}
			info, err := ReadInfo(ctx, out, c.format)
			if err != nil {
				t.Fatal(err)
			}
			want := int64(8 << 20)
			if c.size > 0 {
				want = c.size
			}
			if info.Format != c.format || info.VirtualSize != want {
				t.Errorf("qemu-img info: %s of %d bytes, want %s of %d", info.Format, info.VirtualSize, c.format, want)
			}
			res, err := Check(ctx, out, c.format)
			if err != nil || res.Supported != c.check {
				t.Errorf("qemu-img check: %+v, %v", res, err)
			}
			if c.size == 0 {
				if err := Compare(ctx, in, "raw", out, c.format); err != nil {
					t.Error(err)
				}
			}
			// The overlay that grew the disk is gone.
			if left, _ := filepath.Glob(filepath.Join(dir, ".*grow*")); len(left) > 0 {
				t.Errorf("left %v", left)
			}
		})
	}
	if info, err := ReadInfo(ctx, in, "raw"); err != nil || info.VirtualSize != 8<<20 {
		t.Errorf("the input changed: %+v %v", info, err)
	}
	err := Convert(ctx, ConvertOptions{In: in, InFormat: "raw", Out: filepath.Join(dir, "small.qcow2"), Format: "qcow2", Size: 4 << 20})
	if err == nil || !strings.Contains(err.Error(), "larger than the 4M (4194304 bytes) asked for: a disk is never shrunk") {
		t.Errorf("shrinking: %v", err)
	}
}

func TestCheckReportsADamagedImage(t *testing.T) {
	testkit.RequireProgram(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", p, "8M").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	qemuIO := testkit.RequireProgram(t, "qemu-io", "qemu-utils")
	if out, err := exec.Command(qemuIO, "-f", "qcow2", "-c", "write -P 0x41 0 65536", p).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	// Point the first L1 entry at a cluster past the end of the file.
	f, _ := os.OpenFile(p, os.O_RDWR, 0)
	f.WriteAt([]byte{0x80, 0, 0, 0, 0x7f, 0, 0, 0}, 0x30000)
	f.Close()
	_, err := Check(context.Background(), p, "qcow2")
	if err == nil || !strings.Contains(err.Error(), "qemu-img check found "+p+" damaged") {
		t.Errorf("got %v", err)
	}
}

func FuzzParseCheck(f *testing.F) {
	f.Add([]byte(`{"image-end-offset": 262144, "total-clusters": 160, "check-errors": 0, "filename": "a.qcow2", "format": "qcow2"}`))
	f.Add([]byte(`{"check-errors": 2, "corruptions": 3, "leaks": 1, "format": "vmdk"}`))
	f.Add([]byte(`{"format": ""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := ParseCheck(data)
		if err != nil {
			return
		}
		if !res.Supported || res.Format == "" || res.Corruptions < 0 || res.Leaks < 0 || res.Errors < 0 {
			t.Fatalf("accepted %+v from %q", res, data)
		}
	})
}
