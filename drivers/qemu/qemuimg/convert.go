package qemuimg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ConvertOptions say how Convert converts.
type ConvertOptions struct {
	In, InFormat string
	// Out is the image written; Format its qemu-img format: "qcow2",
	// "raw", "vmdk", "vpc" (VHD) or "vhdx".
	Out, Format string
	// Options are the output format's creation options (-o), such as
	// "subformat=streamOptimized" or "force_size=on"; Convert adds
	// compat=1.1 for qcow2.
	Options []string
	// Compress writes compressed qcow2 clusters.
	Compress bool
	// Size, when set, is the output's virtual size in bytes: larger than
	// the input grows the disk (the new space reads as zeros); smaller is
	// an error. The input is never written: the growing happens in a
	// copy-on-write overlay beside Out, removed at the end.
	Size int64
	// Progress receives whole percents.
	Progress func(done, total int64)
}

// Convert converts an image with qemu-img convert, flattening any backing
// chain, with out-of-order writes and several coroutines so that
// compressed and sparse formats use every core. The output is removed on
// failure.
func Convert(ctx context.Context, o ConvertOptions) error {
	in, inFormat := o.In, o.InFormat
	if o.Size > 0 {
		info, err := ReadInfo(ctx, o.In, o.InFormat)
		if err != nil {
			return err
		}
		switch {
		case o.Size < info.VirtualSize:
			return fmt.Errorf("%s is %s (%d bytes), larger than the %s (%d bytes) asked for: a disk is never shrunk (its file system would be cut)", o.In, HumanSize(info.VirtualSize), info.VirtualSize, HumanSize(o.Size), o.Size)
		case o.Size > info.VirtualSize:
			overlay := filepath.Join(filepath.Dir(o.Out), "."+filepath.Base(o.Out)+".grow.qcow2")
			if err := CreateOverlay(ctx, absPath(o.In), o.InFormat, overlay, o.Size); err != nil {
				return err
			}
			defer os.Remove(overlay)
			in, inFormat = overlay, "qcow2"
		}
	}
	args := []string{"convert", "-p", "-W", "-m", "8", "-f", inFormat, "-O", o.Format}
	if o.Compress {
		args = append(args, "-c")
	}
	opts := o.Options
	if o.Format == "qcow2" {
		opts = append([]string{"compat=1.1"}, opts...)
	}
	if len(opts) > 0 {
		args = append(args, "-o", strings.Join(opts, ","))
	}
	args = append(args, in, o.Out)
	cmd := exec.CommandContext(ctx, Program, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting qemu-img: %w (apt-get install qemu-utils)", err)
	}
	ReadProgress(stdout, o.Progress)
	if err := cmd.Wait(); err != nil {
		os.Remove(o.Out)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("qemu-img convert %s to %s failed (%v): %s", o.In, o.Format, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// absPath makes p absolute, for a backing file named from another
// directory.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// CheckResult is what qemu-img check found in an image.
type CheckResult struct {
	// Supported is false for formats qemu-img cannot check (raw, vpc):
	// nothing else is then set.
	Supported bool
	// Corruptions and Leaks count what is wrong; Errors what could not
	// be checked.
	Corruptions, Leaks, Errors int
	// Format is the format qemu-img checked it as.
	Format string
}

// Check runs qemu-img check on the image at path, read as format. It
// returns an error when the image is damaged (corruptions, or errors while
// checking), not for leaked clusters, which waste space only.
func Check(ctx context.Context, path, format string) (*CheckResult, error) {
	cmd := exec.CommandContext(ctx, Program, "check", "--output=json", "--force-share", "-f", format, path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("running qemu-img check: %w (apt-get install qemu-utils)", err)
	}
	// Exit codes of qemu-img check: 0 fine, 1 not checked (an error),
	// 2 corrupted, 3 leaks only, 63 the format has no checks.
	if code == 63 {
		return &CheckResult{Format: format}, nil
	}
	res, perr := ParseCheck(stdout.Bytes())
	if perr != nil {
		if code != 0 {
			return nil, fmt.Errorf("qemu-img check %s: %s", path, cleanMessage(stderr.String(), path))
		}
		return nil, fmt.Errorf("qemu-img check %s: %w", path, perr)
	}
	if res.Corruptions > 0 || res.Errors > 0 || code == 1 || code == 2 {
		return res, fmt.Errorf("qemu-img check found %s damaged: %d corruptions, %d errors while checking", path, res.Corruptions, res.Errors)
	}
	return res, nil
}

// ParseCheck reads qemu-img check --output=json.
func ParseCheck(data []byte) (*CheckResult, error) {
	var raw struct {
		Format      *string `json:"format"`
		Corruptions int     `json:"corruptions"`
		Leaks       int     `json:"leaks"`
		CheckErrors int     `json:"check-errors"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("reading qemu-img check's JSON: %w", err)
	}
	if raw.Format == nil || *raw.Format == "" {
		return nil, errors.New("qemu-img check named no format")
	}
	if raw.Corruptions < 0 || raw.Leaks < 0 || raw.CheckErrors < 0 {
		return nil, errors.New("qemu-img check gave a negative count")
	}
	return &CheckResult{Supported: true, Corruptions: raw.Corruptions, Leaks: raw.Leaks, Errors: raw.CheckErrors, Format: *raw.Format}, nil
}

// Compare reports whether the images a and b (each of its format) hold
// the same data as a machine reads it, with qemu-img compare; a
// difference is an error that says where.
func Compare(ctx context.Context, a, aFormat, b, bFormat string) error {
	cmd := exec.CommandContext(ctx, Program, "compare", "-q", "-f", aFormat, "-F", bFormat, a, b)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		cmd = exec.CommandContext(ctx, Program, "compare", "-f", aFormat, "-F", bFormat, a, b)
		out, _ = cmd.CombinedOutput()
		return fmt.Errorf("%s and %s differ: %s", a, b, strings.TrimSpace(string(out)))
	}
	return fmt.Errorf("qemu-img compare %s %s: %v: %s", a, b, err, strings.TrimSpace(string(out)))
}

// MiB is 1 MiB, the unit Azure aligns a VHD's virtual size to.
const MiB = 1 << 20

// RoundUpMiB rounds n up to a whole number of MiB.
func RoundUpMiB(n int64) int64 { return (n + MiB - 1) / MiB * MiB }
