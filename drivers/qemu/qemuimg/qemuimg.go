// Package qemuimg drives qemu-img, QEMU's disk image tool: it inspects an
// image (format, virtual size, backing file), tells a real disk image from
// a file that merely reads as raw data, makes copy-on-write overlays that
// leave their backing image untouched, converts between formats with
// progress, and checksums the result.
//
// The qemu() and rootfs() builders share it. It knows nothing of Starlark
// or of builds.
package qemuimg

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/engine/ctxio"
)

// Program is the qemu-img executable.
var Program = "qemu-img"

// Available returns an error saying how to install qemu-img when it is
// missing.
func Available() error {
	if _, err := exec.LookPath(Program); err != nil {
		return fmt.Errorf("%s is not installed: apt-get install qemu-utils", Program)
	}
	return nil
}

// Info is what qemu-img info says about an image.
type Info struct {
	Filename    string `json:"filename"`
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
	ActualSize  int64  `json:"actual-size"`
	Backing     string `json:"backing-filename,omitempty"`
	Encrypted   bool   `json:"encrypted,omitempty"`
	DirtyFlag   bool   `json:"dirty-flag,omitempty"`
}

// ParseInfo reads qemu-img info --output=json. It checks what the drivers
// rely on: a format, and a virtual size that is not negative.
func ParseInfo(data []byte) (*Info, error) {
	var info Info
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&info); err != nil {
		return nil, fmt.Errorf("reading qemu-img info's JSON: %w", err)
	}
	if info.Format == "" {
		return nil, errors.New("qemu-img info named no format")
	}
	if strings.ContainsAny(info.Format, " \t\n/,") {
		return nil, fmt.Errorf("qemu-img info named an odd format %q", info.Format)
	}
	if info.VirtualSize < 0 || info.ActualSize < 0 {
		return nil, fmt.Errorf("qemu-img info gave a negative size (%d, %d)", info.VirtualSize, info.ActualSize)
	}
	return &info, nil
}

// Inspect runs qemu-img info on path. For an image qemu-img reads only as
// raw data, it also checks that the file looks like a disk: a whole number
// of 512-byte sectors holding a partition table or a file system, so that
// a text file or an archive given as a disk is an error that says so.
func Inspect(ctx context.Context, path string) (*Info, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("disk %s does not exist: check the path, or that the build making it ran", path)
		}
		return nil, fmt.Errorf("disk %s: %w", path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("disk %s is a directory, not a disk image", path)
	}
	info, err := ReadInfo(ctx, path, "")
	if err != nil {
		return nil, err
	}
	if info.Format == "raw" {
		if err := checkRaw(path, fi.Size()); err != nil {
			return nil, err
		}
	}
	return info, nil
}

// ReadInfo runs qemu-img info on path, taking what it says as it is (Inspect
// also refuses raw data that is no disk). format, when not "", is the
// format to read it as: a fixed VHD has its footer only at its end, and
// qemu-img's probing takes it for raw data.
func ReadInfo(ctx context.Context, path, format string) (*Info, error) {
	args := []string{"info", "--output=json", "--force-share"}
	if format != "" {
		args = append(args, "-f", format)
	}
	cmd := exec.CommandContext(ctx, Program, append(args, path)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if errors.Is(err, exec.ErrNotFound) {
			return nil, Available()
		}
		return nil, fmt.Errorf("disk %s is not a disk image qemu-img understands: %s", path, cleanMessage(stderr.String(), path))
	}
	info, err := ParseInfo(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("disk %s: %w", path, err)
	}
	return info, nil
}

// cleanMessage shortens qemu-img's complaint: its first line, without the
// program's name and the path the caller names anyway.
func cleanMessage(s, path string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimPrefix(s, "qemu-img: ")
	s = strings.TrimPrefix(s, "Could not open '"+path+"': ")
	if s == "" {
		return "qemu-img info failed"
	}
	return s
}

// checkRaw tells a raw disk image from other data: a disk is a whole
// number of sectors and starts with a partition table or a file system.
func checkRaw(path string, size int64) error {
	if size == 0 {
		return fmt.Errorf("disk %s is not a disk image qemu-img understands: it is empty", path)
	}
	if size%512 != 0 {
		return fmt.Errorf("disk %s is not a disk image qemu-img understands: qemu-img reads it only as raw data, and its %d bytes are not a whole number of 512-byte sectors (a text file, an archive or a truncated download?)", path, size)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 70<<10)
	n, _ := io.ReadFull(f, head)
	if kind := DiskKind(head[:n]); kind == "" {
		return fmt.Errorf("disk %s is not a disk image qemu-img understands: qemu-img reads it only as raw data, and it has no partition table or file system that a machine could boot from", path)
	}
	return nil
}

// DiskKind names what the first bytes of a raw disk hold ("MBR partition
// table", "ext4 file system", ...), or "" when it is none of the kinds a
// machine boots from.
func DiskKind(head []byte) string {
	for _, m := range diskMagics {
		if len(head) >= m.off+len(m.magic) && string(head[m.off:m.off+len(m.magic)]) == m.magic {
			return m.kind
		}
	}
	return ""
}

// diskMagics are the bytes DiskKind looks for, at their offsets, in the
// order it tries them (a boot sector's signature last: others have one
// too).
var diskMagics = []struct {
	off         int
	magic, kind string
}{
	{512, "EFI PART", "GPT partition table"},
	{1080, "\x53\xef", "ext2/3/4 file system"},
	{0, "XFSB", "XFS file system"},
	{0x10040, "_BHRfS_M", "Btrfs file system"},
	{0x8001, "CD001", "ISO 9660 file system"},
	{0, "hsqs", "SquashFS file system"},
	{0, "LUKS\xba\xbe", "LUKS volume"},
	{510, "\x55\xaa", "MBR partition table or boot sector"},
}

// CreateOverlay makes out, a qcow2 image whose reads come from backing (of
// format backingFormat) until written: the machine booted from it writes
// only to out. size, when larger than the backing image, grows the disk.
func CreateOverlay(ctx context.Context, backing, backingFormat, out string, size int64) error {
	args := []string{"-F", backingFormat, "-b", backing, out}
	if size > 0 {
		args = append(args, strconv.FormatInt(size, 10))
	}
	return create(ctx, "an overlay on "+backing, args...)
}

// CreateBlank makes out, an empty qcow2 image of size bytes (sparse: it
// takes almost no space until written), for a machine to install onto.
func CreateBlank(ctx context.Context, out string, size int64) error {
	return create(ctx, "a blank disk of "+HumanSize(size), out, strconv.FormatInt(size, 10))
}

// create runs qemu-img create for a qcow2 image with args; what says what
// it makes, for the error.
func create(ctx context.Context, what string, args ...string) error {
	cmd := exec.CommandContext(ctx, Program, append([]string{"create", "-q", "-f", "qcow2"}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("qemu-img create (%s): %v: %s", what, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ReadProgress reads qemu-img -p output, "    (12.34/100%)" lines ended by
// carriage returns, and reports each new whole percent to progress.
func ReadProgress(r io.Reader, progress func(done, total int64)) {
	br := bufio.NewReader(r)
	last := int64(-1)
	var cur []byte
	for {
		b, err := br.ReadByte()
		end := err != nil || b == '\r' || b == '\n'
		if !end {
			if len(cur) < 128 {
				cur = append(cur, b)
			}
			continue
		}
		if pct, ok := ParseProgress(string(cur)); ok && progress != nil && int64(pct) != last {
			last = int64(pct)
			progress(last, 100)
		}
		cur = cur[:0]
		if err != nil {
			return
		}
	}
}

// ParseProgress reads one qemu-img progress line: "(12.34/100%)".
func ParseProgress(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	s, ok := strings.CutPrefix(s, "(")
	if !ok {
		return 0, false
	}
	num, rest, ok := strings.Cut(s, "/")
	if !ok || rest != "100%)" {
		return 0, false
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || !(f >= 0 && f <= 100) {
		return 0, false
	}
	return f, true
}

// SHA256 returns the hex SHA-256 of the file at path.
func SHA256(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if err := ctxio.Copy(ctx, h, f, make([]byte, 1<<20), nil); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
