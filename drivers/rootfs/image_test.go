package rootfs_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imgbuild/imgbuild/drivers/chroot/chroottest"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/rootfs"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// makeTree builds a tree with every kind of entry an image has: files,
// an executable, a setuid binary, a capability, a hard link, symbolic
// links, a FIFO, a device node, a socket, nested directories. order says
// in which order to create the two files of /etc, so that two trees differ
// only in creation order and times.
func makeTree(t *testing.T, reverse bool, mtime time.Time) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"etc", "usr/bin", "dev", "var/empty", "run"} {
		must(os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	files := []string{"etc/b.conf", "etc/a.conf"}
	if reverse {
		files = []string{"etc/a.conf", "etc/b.conf"}
	}
	for _, f := range files {
		must(os.WriteFile(filepath.Join(root, f), []byte("content of "+f+"\n"), 0o644))
	}
	must(os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("#!/bin/sh\necho tool\n"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/bin/su"), []byte("setuid"), 0o755))
	must(os.Chmod(filepath.Join(root, "usr/bin/su"), 0o755|os.ModeSetuid))
	must(os.WriteFile(filepath.Join(root, "usr/bin/ping"), []byte("ping"), 0o755))
	// cap_net_raw+ep, as setcap writes it (VFS_CAP_REVISION_2).
	capv := []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}
	must(unix.Setxattr(filepath.Join(root, "usr/bin/ping"), "security.capability", capv, 0))
	must(os.Link(filepath.Join(root, "usr/bin/tool"), filepath.Join(root, "usr/bin/tool2")))
	must(os.Symlink("usr/bin", filepath.Join(root, "bin")))
	must(os.Symlink("/etc/a.conf", filepath.Join(root, "etc/abs-link")))
	must(syscall.Mkfifo(filepath.Join(root, "run/fifo"), 0o600))
	must(syscall.Mknod(filepath.Join(root, "dev/null"), syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(os.Chown(filepath.Join(root, "etc/b.conf"), 1000, 1000))
	// A socket cannot be archived; it is left out.
	if l, err := net.Listen("unix", filepath.Join(root, "run/sock")); err == nil {
		// Closing it removes it, changing /run: not before the test ends.
		t.Cleanup(func() { l.Close() })
	}
	if !mtime.IsZero() {
		filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}, unix.AT_SYMLINK_NOFOLLOW)
			return nil
		})
	}
	return root
}

func tarOf(t *testing.T, root string, epoch time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := rootfs.WriteTar(context.Background(), root, &buf, epoch, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTarIsReproducible(t *testing.T) {
	testkit.RequireRoot(t) // device nodes, owners, capabilities
	epoch := time.Unix(1700000000, 0)
	// Two trees made in a different order, at different times after the
	// epoch: the same archive.
	a := tarOf(t, makeTree(t, false, time.Now()), epoch)
	b := tarOf(t, makeTree(t, true, time.Now().Add(time.Hour)), epoch)
	if !bytes.Equal(a, b) {
		t.Fatal("two trees with the same contents made different archives")
	}
	// Older times are kept, newer ones clamped.
	old := time.Unix(1600000000, 0)
	c := tarOf(t, makeTree(t, false, old), epoch)
	var names []string
	for _, e := range testkit.ReadTar(t, bytes.NewReader(c)) {
		h := e.Header
		names = append(names, h.Name)
		if !h.ModTime.Equal(old) {
			t.Errorf("%s: mtime %v, want the original %v (older than the epoch)", h.Name, h.ModTime, old)
		}
		if h.Uname != "" || h.Gname != "" || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: names or times that vary between machines: %+v", h.Name, h)
		}
		switch h.Name {
		case "./usr/bin/su":
			if h.Mode&0o4000 == 0 {
				t.Errorf("su lost its setuid bit: %o", h.Mode)
			}
		case "./usr/bin/ping":
			if h.PAXRecords["SCHILY.xattr.security.capability"] == "" {
				t.Errorf("ping lost its capability: %v", h.PAXRecords)
			}
		case "./usr/bin/tool2":
			if h.Typeflag != tar.TypeLink || h.Linkname != "./usr/bin/tool" {
				t.Errorf("hard link: %c %q", h.Typeflag, h.Linkname)
			}
		case "./dev/null":
			if h.Typeflag != tar.TypeChar || h.Devmajor != 1 || h.Devminor != 3 {
				t.Errorf("device: %c %d,%d", h.Typeflag, h.Devmajor, h.Devminor)
			}
		case "./run/fifo":
			if h.Typeflag != tar.TypeFifo {
				t.Errorf("fifo: %c", h.Typeflag)
			}
		case "./etc/b.conf":
			if h.Uid != 1000 || h.Gid != 1000 {
				t.Errorf("owner %d:%d", h.Uid, h.Gid)
			}
		case "./etc/abs-link":
			if h.Linkname != "/etc/a.conf" {
				t.Errorf("symbolic link to %q", h.Linkname)
			}
		case "./run/sock":
			t.Error("a socket was archived")
		}
	}
	want := "./ ./bin ./dev/ ./dev/null ./etc/ ./etc/a.conf ./etc/abs-link ./etc/b.conf ./run/ ./run/fifo ./usr/ ./usr/bin/ ./usr/bin/ping ./usr/bin/su ./usr/bin/tool ./usr/bin/tool2 ./var/ ./var/empty/"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("entries in order:\n got %s\nwant %s", got, want)
	}
	// GNU tar reads it back, capabilities included.
	dst := t.TempDir()
	cmd := exec.Command("tar", "--xattrs", "--xattrs-include=*", "-xpf", "-", "-C", dst)
	cmd.Stdin = bytes.NewReader(c)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
	if v, err := getxattr(filepath.Join(dst, "usr/bin/ping"), "security.capability"); err != nil || len(v) == 0 {
		t.Errorf("extracted ping has no capability: %v", err)
	}
}

func getxattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := unix.Getxattr(p, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func TestClampMtimes(t *testing.T) {
	root := makeTree(t, false, time.Now())
	epoch := time.Unix(1700000000, 0)
	n, err := rootfs.ClampMtimes(context.Background(), root, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if n < 15 {
		t.Errorf("only %d times clamped", n)
	}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if fi.ModTime().After(epoch) {
			t.Errorf("%s: %v is after the epoch", p, fi.ModTime())
		}
		return nil
	})
}

func requireMkfs(t *testing.T) {
	t.Helper()
	testkit.RequireProgram(t, "mkfs.ext4", "e2fsprogs")
	testkit.RequireProgram(t, "debugfs", "e2fsprogs")
}

func TestExt4HoldsTheTreeWithoutAMount(t *testing.T) {
	testkit.RequireRoot(t)
	requireMkfs(t)
	root := makeTree(t, false, time.Unix(1600000000, 0))
	out := filepath.Join(t.TempDir(), "disk.raw")
	uuid := "0b0e4c3a-5f5c-4a3b-9a8e-1d2c3b4a5f60"
	if err := rootfs.MakeExt4(context.Background(), root, out, rootfs.Ext4Options{Size: 64 << 20, Label: "root", UUID: uuid, Epoch: time.Unix(1700000000, 0)}); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("e2fsck", "-fn", out).CombinedOutput(); err != nil {
		t.Errorf("e2fsck: %v\n%s", err, out)
	}
	debugfs := func(req string) string {
		b, _ := exec.Command("debugfs", "-R", req, out).Output()
		return string(b)
	}
	if got := debugfs("cat /etc/a.conf"); got != "content of etc/a.conf\n" {
		t.Errorf("/etc/a.conf: %q", got)
	}
	if got := debugfs("stat /usr/bin/su"); !strings.Contains(got, "Mode:  04755") {
		t.Errorf("su:\n%s", got)
	}
	if got := debugfs("ea_list /usr/bin/ping"); !strings.Contains(got, "security.capability") {
		t.Errorf("ping's capability:\n%s", got)
	}
	if got := debugfs("stat /etc/b.conf"); !strings.Contains(got, "User:  1000   Group:  1000") {
		t.Errorf("b.conf's owner:\n%s", got)
	}
	if got := debugfs("stat /dev/null"); !strings.Contains(got, "Type: character special") {
		t.Errorf("/dev/null:\n%s", got)
	}
	blkid, _ := exec.Command("blkid", "-o", "export", out).Output()
	if !strings.Contains(string(blkid), "UUID="+uuid) || !strings.Contains(string(blkid), "LABEL=root") || !strings.Contains(string(blkid), "TYPE=ext4") {
		t.Errorf("blkid:\n%s", blkid)
	}
	if m := chroottest.MountsUnder("/"); len(m) > 0 {
		for _, p := range m {
			if strings.HasPrefix(p, root) {
				t.Errorf("mounted: %s", p)
			}
		}
	}
}

func TestASizeTooSmallSaysHowMuchIsNeeded(t *testing.T) {
	testkit.RequireRoot(t)
	requireMkfs(t)
	root := makeTree(t, false, time.Time{})
	// 40 MiB of data that does not compress or dedupe.
	data := make([]byte, 40<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(root, "var/big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "disk.raw")
	err := rootfs.MakeExt4(context.Background(), root, out, rootfs.Ext4Options{Size: 32 << 20})
	var se *rootfs.SizeError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a *SizeError", err)
	}
	u, _ := rootfs.TreeUsage(context.Background(), root)
	want := "size 32M is too small for the root file system: it needs at least " + qemuimg.FormatSize(se.Need) + " (" + strconv.FormatInt(u.Files, 10) + " files taking " + qemuimg.HumanSize(u.Bytes) + ", plus the file system's own structures); set size = \"64M\" or more"
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	if se.Need < 41<<20 || se.Need > 56<<20 {
		t.Errorf("estimate %s for 40M of data", qemuimg.FormatSize(se.Need))
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed image was left behind")
	}
	// The size it says is needed is enough.
	if err := rootfs.MakeExt4(context.Background(), root, out, rootfs.Ext4Options{Size: se.Need}); err != nil {
		t.Errorf("with the size it asked for (%s): %v", qemuimg.FormatSize(se.Need), err)
	}
}
