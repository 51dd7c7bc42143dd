package diskimage_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/diskimage"
	"github.com/imgbuild/imgbuild/drivers/diskpost/diskposttest"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/engine"
)

// TestEveryFormatReadsBackThroughQemuImg converts one disk to every
// format, each read back by qemu-img as the platform's importer would:
// qemu-img info names the format and subformat, qemu-img check finds
// nothing wrong, qemu-img compare finds the same data.
func TestEveryFormatReadsBackThroughQemuImg(t *testing.T) {
	ws := t.TempDir()
	in := diskposttest.Artifact(t, ws, "web", 64<<20)
	ctx := context.Background()
	for _, c := range []struct {
		settings map[string]any
		format   string // qemu-img's
		sub      string // what qemu-img info's format-specific data names, "" for none
		checked  bool
	}{
		{settings: map[string]any{"format": "vhd"}, format: "vpc"},
		{settings: map[string]any{"format": "vhd", "subformat": "dynamic"}, format: "vpc"},
		{settings: map[string]any{"format": "vhdx"}, format: "vhdx", checked: true},
		{settings: map[string]any{"format": "vmdk"}, format: "vmdk", sub: "streamOptimized", checked: true},
		{settings: map[string]any{"format": "vmdk", "subformat": "monolithicSparse", "output": "output/web/ws.vmdk"}, format: "vmdk", sub: "monolithicSparse", checked: true},
		{settings: map[string]any{"format": "raw"}, format: "raw"},
		{settings: map[string]any{"format": "qcow2", "compress": true, "output": "output/web/small.qcow2"}, format: "qcow2", checked: true},
	} {
		name := c.settings["format"].(string)
		if s, ok := c.settings["subformat"]; ok {
			name += "-" + s.(string)
		}
		t.Run(name, func(t *testing.T) {
			env, events := diskposttest.Env(t, ws, "web")
			out, err := diskposttest.MustNew(t, diskimage.Def(), c.settings).PostProcess(ctx, env, in)
			if err != nil {
				t.Fatal(err)
			}
			f := c.settings["format"].(string)
			rel, _ := out.Fields[f].(string)
			if rel == "" || out.ID != rel || out.Files[len(out.Files)-1] != rel || !strings.HasPrefix(out.Fields[f+"_checksum"].(string), "sha256:") {
				t.Fatalf("artifact %+v", out)
			}
			if out.Fields["disk"] != in.Fields["disk"] || out.Files[0] != in.Files[0] {
				t.Errorf("the input's disk was not kept: %+v", out)
			}
			p := filepath.Join(ws, rel)
			info, err := qemuimg.ReadInfo(ctx, p, c.format)
			if err != nil || info.Format != c.format || info.VirtualSize != 64<<20 {
				t.Errorf("qemu-img info: %+v %v", info, err)
			}
			if c.sub != "" {
				if got := formatSpecific(t, p); !strings.Contains(got, `"create-type": "`+c.sub+`"`) {
					t.Errorf("qemu-img info's format-specific data: %s, want create-type %s", got, c.sub)
				}
			}
			res, err := qemuimg.Check(ctx, p, c.format)
			if err != nil || res.Supported != c.checked {
				t.Errorf("qemu-img check: %+v %v", res, err)
			}
			if err := qemuimg.Compare(ctx, filepath.Join(ws, in.Fields["disk"].(string)), "qcow2", p, c.format); err != nil {
				t.Error(err)
			}
			if !strings.Contains(events.Log(), "disk_image: "+rel+" made in") {
				t.Errorf("no report of the image in\n%s", events.Log())
			}
		})
	}
}

func formatSpecific(t *testing.T, p string) string {
	t.Helper()
	out, err := execOutput("qemu-img", "info", "--output=json", p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAnAzureVHDIsFixedAndAlignedToAWholeMiB(t *testing.T) {
	ws := t.TempDir()
	ctx := context.Background()
	// A disk whose size is not a whole MiB is grown to the next one.
	in := diskposttest.Artifact(t, ws, "web", 64<<20+4096)
	env, events := diskposttest.Env(t, ws, "web")
	out, err := diskposttest.MustNew(t, diskimage.Def(), map[string]any{"format": "vhd"}).PostProcess(ctx, env, in)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(ws, out.Fields["vhd"].(string))
	info, err := qemuimg.ReadInfo(ctx, p, "vpc")
	if err != nil || info.VirtualSize != 65<<20 {
		t.Fatalf("qemu-img info: %+v %v, want 65 MiB", info, err)
	}
	fi, _ := os.Stat(p)
	if fi.Size() != 65<<20+512 {
		t.Errorf("a fixed VHD is its data and a 512-byte footer: %d bytes", fi.Size())
	}
	footer := make([]byte, 512)
	f, _ := os.Open(p)
	f.ReadAt(footer, fi.Size()-512)
	f.Close()
	// The footer: the "conectix" cookie, disk type 2 (fixed).
	if string(footer[:8]) != "conectix" || footer[63] != 2 {
		t.Errorf("footer %q, type %d", footer[:8], footer[63])
	}
	if !strings.Contains(events.Log(), "the VHD is grown to 65M, as Azure needs") {
		t.Errorf("no word of the growing in\n%s", events.Log())
	}
	// disk_size grows it further.
	env, _ = diskposttest.Env(t, ws, "web")
	out, err = diskposttest.MustNew(t, diskimage.Def(), map[string]any{"format": "vhd", "disk_size": "128M", "output": "output/web/big.vhd"}).PostProcess(ctx, env, in)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := qemuimg.ReadInfo(ctx, filepath.Join(ws, "output/web/big.vhd"), "vpc"); err != nil || info.VirtualSize != 128<<20 {
		t.Errorf("grown: %+v %v", info, err)
	}
}

func TestBadInputSaysWhatIsWrong(t *testing.T) {
	for _, c := range []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"a VHD size not a whole MiB", map[string]any{"format": "vhd", "disk_size": "1000.5M"},
			`disk_size: 1000.5M (1049100288 bytes) is not a whole number of MiB: Azure takes a VHD only when its virtual size is aligned to 1 MiB; use 1001M`},
		{"an unknown format", map[string]any{"format": "vhdk"}, `format: "vhdk" is not one of "vhd", "vhdx", "raw", "qcow2", "vmdk" (did you mean "vhd"?)`},
		{"a subformat of another format", map[string]any{"format": "vhd", "subformat": "streamOptimized"}, `subformat: "streamOptimized" is not a subformat of vhd (it has fixed, dynamic)`},
		{"a misspelt subformat", map[string]any{"format": "vmdk", "subformat": "streamoptimised"}, `did you mean "streamOptimized"?`},
		{"compress on a VHD", map[string]any{"format": "vhd", "compress": true}, `compress: compresses a qcow2, but format is "vhd"`},
		{"a VHD too large", map[string]any{"format": "vhd", "disk_size": "3T"}, `disk_size: 3T is larger than a vhd can be (2040G)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := diskposttest.New(t, diskimage.Def(), c.settings)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v\nwant %s", err, c.want)
			}
		})
	}
}

func TestAnArtifactThatIsNotADiskNamesTheBuildAndWhatItMade(t *testing.T) {
	ws := t.TempDir()
	env, _ := diskposttest.Env(t, ws, "api")
	p := diskposttest.MustNew(t, diskimage.Def(), map[string]any{"format": "vhd"})
	for _, c := range []struct {
		in   *engine.Artifact
		want string
	}{
		{&engine.Artifact{Build: "api", Driver: "amazon_ebs", ID: "ami-0abc", Fields: map[string]any{"image_id": "ami-0abc"}},
			`build "api" (amazon_ebs) made "ami-0abc" with no files, which is not a disk: disk_image() converts the disk of a qemu() or rootfs() build`},
		{&engine.Artifact{Build: "api", Driver: "local", ID: "output/api", Files: []string{"output/api/a", "output/api/b", "output/api/c", "output/api/d"}},
			`build "api" (local) made "output/api" (files output/api/a, output/api/b, output/api/c and 1 more), which is not a disk`},
		{&engine.Artifact{Build: "api", Driver: "rootfs", ID: "output/api/api.tar", Fields: map[string]any{"disk": "", "tar": "output/api/api.tar"}},
			`build "api" (rootfs) made no disk, only the tar output/api/api.tar: disk_image() converts a disk; add "qcow2" or "raw" to its formats`},
	} {
		_, err := p.PostProcess(context.Background(), env, c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v\nwant %s", err, c.want)
		}
	}
}
