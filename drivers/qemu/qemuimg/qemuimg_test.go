package qemuimg

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

func TestParseInfo(t *testing.T) {
	real := `{
    "children": [{"name": "file", "info": {"children": [], "virtual-size": 197120, "filename": "x.qcow2", "format": "file", "actual-size": 200704, "format-specific": {"type": "file", "data": {}}, "dirty-flag": false}}],
    "virtual-size": 1073741824,
    "filename": "x.qcow2",
    "cluster-size": 65536,
    "format": "qcow2",
    "actual-size": 200704,
    "backing-filename": "/images/base.raw",
    "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "compression-type": "zlib", "lazy-refcounts": false, "refcount-bits": 16, "corrupt": false, "extended-l2": false}},
    "dirty-flag": false
}`
	info, err := ParseInfo([]byte(real))
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != "qcow2" || info.VirtualSize != 1<<30 || info.Backing != "/images/base.raw" {
		t.Errorf("%+v", info)
	}
	for in, want := range map[string]string{
		``:                                      "reading qemu-img info's JSON",
		`{"virtual-size": 5}`:                   "qemu-img info named no format",
		`{"format": "raw", "virtual-size": -1}`: "negative size",
		`{"format": "a b"}`:                     "odd format",
		`[1]`:                                   "reading qemu-img info's JSON",
	} {
		if _, err := ParseInfo([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseInfo(%q): %v, want %q", in, err, want)
		}
	}
}

func FuzzParseInfo(f *testing.F) {
	f.Add([]byte(`{"virtual-size": 512, "filename": "a", "format": "raw", "actual-size": 4096, "dirty-flag": false}`))
	f.Add([]byte(`{"format": "qcow2", "virtual-size": 1073741824, "backing-filename": "b"}`))
	f.Add([]byte(`{"format": "", "virtual-size": 99999999999999999999}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseInfo(data)
		if err != nil {
			return
		}
		if info.Format == "" || info.VirtualSize < 0 || info.ActualSize < 0 || strings.ContainsAny(info.Format, " \t\n/,") {
			t.Fatalf("accepted %+v from %q", info, data)
		}
	})
}

func TestParseProgress(t *testing.T) {
	for in, want := range map[string]float64{"    (0.00/100%)": 0, "(12.34/100%)": 12.34, "(100.00/100%)": 100} {
		got, ok := ParseProgress(in)
		if !ok || got != want {
			t.Errorf("ParseProgress(%q) = %v, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "(", "(x/100%)", "(101/100%)", "(-1/100%)", "(1/50%)", "(NaN/100%)"} {
		if _, ok := ParseProgress(in); ok {
			t.Errorf("ParseProgress(%q) accepted", in)
		}
	}
	var got []int64
	ReadProgress(strings.NewReader("    (0.00/100%)\r    (1.01/100%)\r    (1.99/100%)\r    (50.00/100%)\r    (100.00/100%)\n"), func(done, total int64) {
		if total != 100 {
			t.Errorf("total %d", total)
		}
		got = append(got, done)
	})
	if want := []int64{0, 1, 50, 100}; !equal(got, want) {
		t.Errorf("reported %v, want %v", got, want)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func FuzzParseProgress(f *testing.F) {
	f.Add("    (12.34/100%)\r")
	f.Add("(100/100%)")
	f.Add("(1e2/100%)")
	f.Fuzz(func(t *testing.T, s string) {
		if v, ok := ParseProgress(s); ok && !(v >= 0 && v <= 100) {
			t.Fatalf("ParseProgress(%q) = %v", s, v)
		}
		last := int64(-1)
		ReadProgress(strings.NewReader(s), func(done, total int64) {
			if done < 0 || done > 100 || total != 100 || done == last {
				t.Fatalf("reported %d/%d after %d from %q", done, total, last, s)
			}
			last = done
		})
	})
}

func TestDiskKind(t *testing.T) {
	mk := func(off int, magic string) []byte {
		b := make([]byte, 70<<10)
		copy(b[off:], magic)
		return b
	}
	for name, head := range map[string][]byte{
		"GPT partition table":                mk(512, "EFI PART"),
		"ext2/3/4 file system":               mk(1080, "\x53\xef"),
		"MBR partition table or boot sector": mk(510, "\x55\xaa"),
		"XFS file system":                    mk(0, "XFSB"),
		"":                                   make([]byte, 4096),
	} {
		if got := DiskKind(head); got != name {
			t.Errorf("DiskKind = %q, want %q", got, name)
		}
	}
	if got := DiskKind(nil); got != "" {
		t.Errorf("DiskKind(nil) = %q", got)
	}
}

func TestOverlayLeavesItsBackingImageAlone(t *testing.T) {
	testkit.RequireProgram(t, Program, "qemu-utils")
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	data := make([]byte, 1<<20)
	copy(data[510:], "\x55\xaa")
	os.WriteFile(base, data, 0o644)
	ctx := context.Background()
	info, err := Inspect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != "raw" || info.VirtualSize != 1<<20 {
		t.Errorf("%+v", info)
	}
	overlay := filepath.Join(dir, "overlay.qcow2")
	if err := CreateOverlay(ctx, base, "raw", overlay, 4<<20); err != nil {
		t.Fatal(err)
	}
	oi, err := Inspect(ctx, overlay)
	if err != nil {
		t.Fatal(err)
	}
	if oi.Format != "qcow2" || oi.VirtualSize != 4<<20 || oi.Backing != base {
		t.Errorf("overlay: %+v", oi)
	}
	// Write through the overlay with qemu-io; the base stays.
	qemuIO := testkit.RequireProgram(t, "qemu-io", "qemu-utils")
	if out, err := exec.Command(qemuIO, "-f", "qcow2", "-c", "write -P 0x41 0 4096", overlay).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io: %v %s", err, out)
	}
	after, _ := os.ReadFile(base)
	if !bytes.Equal(after, data) {
		t.Error("the backing image changed")
	}
	var pct []int64
	out := filepath.Join(dir, "out.qcow2")
	if err := Convert(ctx, ConvertOptions{In: overlay, InFormat: "qcow2", Out: out, Format: "qcow2", Compress: true, Progress: func(d, t int64) { pct = append(pct, d) }}); err != nil {
		t.Fatal(err)
	}
	ci, err := Inspect(ctx, out)
	if err != nil || ci.Backing != "" || ci.VirtualSize != 4<<20 {
		t.Errorf("converted: %+v %v (want no backing file: flattened)", ci, err)
	}
	if len(pct) == 0 || pct[len(pct)-1] != 100 {
		t.Errorf("progress: %v", pct)
	}
	err = Convert(ctx, ConvertOptions{In: filepath.Join(dir, "missing"), InFormat: "raw", Out: filepath.Join(dir, "x.qcow2"), Format: "qcow2"})
	if err == nil || !strings.Contains(err.Error(), "qemu-img convert") || !strings.Contains(err.Error(), "No such file") {
		t.Errorf("converting a missing image: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.qcow2")); err == nil {
		t.Error("a failed conversion left its output")
	}
}
