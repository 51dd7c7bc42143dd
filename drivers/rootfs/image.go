package rootfs

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
)

// ClampMtimes sets the modification time of every file, directory and
// symbolic link of the tree at root that is newer than epoch to epoch, as
// reproducible builds do with SOURCE_DATE_EPOCH. It returns how many it
// changed.
func ClampMtimes(ctx context.Context, root string, epoch time.Time) (int, error) {
	n := 0
	ts := []unix.Timespec{unix.NsecToTimespec(epoch.UnixNano()), unix.NsecToTimespec(epoch.UnixNano())}
	// Children first, so that a directory's time is set after its
	// entries stop changing it.
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.ModTime().After(epoch) {
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("clamping the time of %s: %w", p, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		fi, err := os.Lstat(dirs[i])
		if err != nil {
			return n, err
		}
		if fi.ModTime().After(epoch) {
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i], ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return n, fmt.Errorf("clamping the time of %s: %w", dirs[i], err)
			}
			n++
		}
	}
	return n, nil
}

// WriteTar writes the tree at root to w as a POSIX (PAX) tar archive that
// depends only on the tree's contents: entries in lexical order, named
// "./path", with numeric owners and no user or group names, modification
// times truncated to the second and clamped to epoch (when not zero), no
// access or change times, hard links as links, device nodes, FIFOs,
// symbolic links and extended attributes (file capabilities) kept. Sockets
// are left out: they cannot be archived.
func WriteTar(ctx context.Context, root string, w io.Writer, epoch time.Time, progress func(done, total int64)) error {
	var total int64
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	bw := bufio.NewWriterSize(w, 1<<20)
	tw := tar.NewWriter(bw)
	type inode struct{ dev, ino uint64 }
	links := map[inode]string{}
	var done int64
	buf := make([]byte, 1<<20)
	err := walk(ctx, root, func(p string, fi fs.FileInfo) error {
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := "./"
		if rel != "." {
			name = "./" + filepath.ToSlash(rel)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no file system metadata", p)
		}
		if fi.Mode()&fs.ModeSocket != 0 {
			return nil
		}
		hdr := &tar.Header{
			Name:    name,
			Mode:    int64(fi.Mode().Perm()),
			Uid:     int(st.Uid),
			Gid:     int(st.Gid),
			ModTime: fi.ModTime().Truncate(time.Second),
			Format:  tar.FormatPAX,
		}
		if fi.Mode()&fs.ModeSetuid != 0 {
			hdr.Mode |= 0o4000
		}
		if fi.Mode()&fs.ModeSetgid != 0 {
			hdr.Mode |= 0o2000
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		if !epoch.IsZero() && hdr.ModTime.After(epoch) {
			hdr.ModTime = epoch
		}
		mode := fi.Mode()
		switch {
		case mode.IsDir():
			hdr.Typeflag = tar.TypeDir
			if name != "./" {
				hdr.Name += "/"
			}
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		case mode&fs.ModeNamedPipe != 0:
			hdr.Typeflag = tar.TypeFifo
		case mode&fs.ModeDevice != 0:
			hdr.Typeflag = tar.TypeBlock
			if mode&fs.ModeCharDevice != 0 {
				hdr.Typeflag = tar.TypeChar
			}
			hdr.Devmajor, hdr.Devminor = int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev))) // Rdev is int32 on darwin
		case mode.IsRegular():
			hdr.Typeflag = tar.TypeReg
			hdr.Size = fi.Size()
			if st.Nlink > 1 {
				key := inode{uint64(st.Dev), st.Ino}
				if first, ok := links[key]; ok {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					links[key] = name
				}
			}
		default:
			return fmt.Errorf("%s: cannot archive a %s", p, mode.Type())
		}
		if mode&fs.ModeSymlink == 0 {
			if x, err := xattrs(p); err != nil {
				return err
			} else if len(x) > 0 {
				hdr.PAXRecords = x
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("archiving %s: %w", name, err)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		for {
			n, rerr := f.Read(buf)
			if n > 0 {
				if _, err := tw.Write(buf[:n]); err != nil {
					return fmt.Errorf("archiving %s: %w", name, err)
				}
				done += int64(n)
				if progress != nil {
					progress(done, total)
				}
			}
			if rerr == io.EOF {
				return nil
			}
			if rerr != nil {
				return rerr
			}
			if err := ctx.Err(); err != nil {
				return context.Cause(ctx)
			}
		}
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// xattrs returns a file's extended attributes as PAX records
// (SCHILY.xattr.security.capability, ...), sorted by the tar writer.
func xattrs(p string) (map[string]string, error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing the extended attributes of %s: %w", p, err)
	}
	if size == 0 {
		return nil, nil
	}
	list := make([]byte, size)
	size, err = unix.Llistxattr(p, list)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, name := range strings.Split(strings.TrimRight(string(list[:size]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		vs, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			continue
		}
		v := make([]byte, vs)
		vs, err = unix.Lgetxattr(p, name, v)
		if err != nil {
			continue
		}
		out["SCHILY.xattr."+name] = string(v[:vs])
	}
	return out, nil
}

// walk calls fn with the path and lstat information of everything in the
// tree at root, a directory before what it holds, until fn or the walk
// fails or ctx ends.
func walk(ctx context.Context, root string, fn func(p string, fi fs.FileInfo) error) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return fn(p, fi)
	})
}

// Usage is what a tree holds, as an ext4 file system will need it.
type Usage struct {
	Files int64 // entries of every kind
	Bytes int64 // data blocks of files, directories and long symbolic links
}

// TreeUsage measures the tree at root. A sparse file counts the blocks it
// has, not its length: mkfs.ext4 -d keeps the holes.
func TreeUsage(ctx context.Context, root string) (Usage, error) {
	var u Usage
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	err := walk(ctx, root, func(p string, fi fs.FileInfo) error {
		u.Files++
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case fi.Mode().IsRegular():
			if st != nil && st.Nlink > 1 {
				k := inode{uint64(st.Dev), st.Ino}
				if seen[k] {
					return nil
				}
				seen[k] = true
			}
			n := blocks(fi.Size())
			if st != nil && st.Blocks*512 < n {
				n = blocks(st.Blocks * 512)
			}
			u.Bytes += n + blocks(n/256) // extent tree blocks, roughly
		case fi.IsDir():
			// A directory grows with its entries: a block per ~60.
			u.Bytes += blockSize
		case fi.Mode()&fs.ModeSymlink != 0 && fi.Size() >= 60:
			u.Bytes += blockSize
		}
		return nil
	})
	if err == nil && u.Files > 0 {
		// Large directories: one more block per 60 entries in all.
		u.Bytes += blocks(u.Files / 60 * blockSize)
	}
	return u, err
}

const blockSize = 4096

func blocks(n int64) int64 { return (n + blockSize - 1) / blockSize * blockSize }

// inodeRatio is mke2fs's default bytes-per-inode for file systems of this
// size (the "default" type of mke2fs.conf).
const inodeRatio = 16384

// journalBlocks is the journal mke2fs makes, in blocks, for a file system
// of fewer than below blocks (ext2fs_default_journal_size); a larger one
// has 262144.
var journalBlocks = []struct{ below, blocks int64 }{
	{2048, 0},
	{32768, 1024},
	{256 * 1024, 4096},
	{512 * 1024, 8192},
	{4096 * 1024, 16384},
	{8192 * 1024, 32768},
	{16384 * 1024, 65536},
	{32768 * 1024, 131072},
}

// journalBytes is the journal mke2fs makes for a file system of size
// bytes.
func journalBytes(size int64) int64 {
	b := size / blockSize
	for _, j := range journalBlocks {
		if b < j.below {
			return j.blocks * blockSize
		}
	}
	return 262144 * blockSize
}

// ext4Overhead is what an ext4 file system of size bytes spends on itself:
// inode tables, journal, bitmaps and group descriptors, blocks reserved
// for growth, and a margin.
func ext4Overhead(size int64) int64 {
	inodeTables := size / inodeRatio * 256
	groups := (size/blockSize + 32767) / 32768
	return inodeTables + journalBytes(size) + groups*3*blockSize + 256*blockSize + size/50
}

// NeededSize is the smallest ext4 file system, in bytes rounded up to a
// MiB, that holds u with room to spare for the file system's own
// structures and enough inodes.
func NeededSize(u Usage) int64 {
	size := u.Bytes + u.Bytes/10 + 8<<20
	for i := 0; i < 50; i++ {
		need := u.Bytes + ext4Overhead(size)
		if inodes := u.Files + u.Files/10 + 64; inodes*inodeRatio > need {
			need = max(need, inodes*inodeRatio)
		}
		if need <= size {
			break
		}
		size = need
	}
	return (size + 1<<20 - 1) >> 20 << 20
}

// SizeError is a file system size too small for the tree.
type SizeError struct {
	Size   int64 // as asked for
	Need   int64 // NeededSize of the tree
	Usage  Usage
	Detail string // mke2fs's complaint, when it was mke2fs that found out
}

// Error says the size asked for, the size needed and what to set.
func (e *SizeError) Error() string {
	msg := fmt.Sprintf("size %s is too small for the root file system: it needs at least %s (%d files taking %s, plus the file system's own structures); set size = %q or more",
		qemuimg.FormatSize(e.Size), qemuimg.FormatSize(e.Need), e.Usage.Files, qemuimg.HumanSize(e.Usage.Bytes), qemuimg.FormatSize(qemuimg.RoundUpSize(e.Need)))
	if e.Detail != "" {
		msg += " (mkfs.ext4: " + e.Detail + ")"
	}
	return msg
}

// Ext4Options are how MakeExt4 makes the file system.
type Ext4Options struct {
	Size  int64
	Label string
	UUID  string
	// Epoch, when not zero, is the time recorded in the file system's own
	// fields (E2FSPROGS_FAKE_TIME), so that only the tree's contents make
	// it differ.
	Epoch time.Time
	// Output receives mkfs.ext4's output.
	Output io.Writer
}

// MakeExt4 makes the raw ext4 file system image out from the tree at root
// with mkfs.ext4 -d: no loop device, no mount. A size too small for the
// tree is a *SizeError, found before mkfs.ext4 runs when the estimate says
// so and after, when mkfs.ext4 runs out of room. out is removed on failure.
func MakeExt4(ctx context.Context, root, out string, opts Ext4Options) error {
	u, err := TreeUsage(ctx, root)
	if err != nil {
		return fmt.Errorf("measuring %s: %w", root, err)
	}
	need := NeededSize(u)
	if opts.Size < need {
		return &SizeError{Size: opts.Size, Need: need, Usage: u}
	}
	f, err := os.OpenFile(out, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(opts.Size); err != nil {
		f.Close()
		os.Remove(out)
		return err
	}
	f.Close()
	args := []string{"-q", "-F", "-t", "ext4", "-b", strconv.Itoa(blockSize), "-d", root}
	if opts.Label != "" {
		args = append(args, "-L", opts.Label)
	}
	if opts.UUID != "" {
		args = append(args, "-U", opts.UUID, "-E", "hash_seed="+opts.UUID)
	}
	args = append(args, out)
	cmd := exec.CommandContext(ctx, mkfsExt4, args...)
	cmd.Env = append(os.Environ(), "MKE2FS_CONFIG=/etc/mke2fs.conf")
	if !opts.Epoch.IsZero() {
		cmd.Env = append(cmd.Env, "E2FSPROGS_FAKE_TIME="+strconv.FormatInt(opts.Epoch.Unix(), 10))
	}
	var captured strings.Builder
	w := io.Writer(&captured)
	if opts.Output != nil {
		w = io.MultiWriter(&captured, opts.Output)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		os.Remove(out)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		text := strings.TrimSpace(captured.String())
		if noRoom(text) {
			// The estimate was short: say how much more it takes.
			return &SizeError{Size: opts.Size, Need: max(need, opts.Size+opts.Size/8), Usage: u, Detail: lastLine(text)}
		}
		return fmt.Errorf("mkfs.ext4 -d %s %s failed (%v): %s", root, out, err, lastLines(text, 5))
	}
	return nil
}

// mkfsExt4 is the mkfs.ext4 program.
var mkfsExt4 = "mkfs.ext4"

func noRoom(text string) bool {
	for _, s := range []string{"Could not allocate block", "No space left on device", "Could not allocate inode", "inode table", "No free space in the"} {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
