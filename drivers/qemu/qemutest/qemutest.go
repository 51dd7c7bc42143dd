// Package qemutest builds the tiny machine the qemu() builder is tested
// with: Debian's kernel, and an initramfs holding busybox-static, dropbear
// and OpenSSH's sftp-server, which boots to SSH in seconds under TCG. The
// machine behaves like a real image toward qemu(): it takes the build's SSH
// key from SMBIOS type 11 (io.systemd.credential:ssh.authorized_keys.root,
// as systemd does) or from a cloud-init NoCloud seed named in SMBIOS type 1,
// takes 10.0.2.15 on QEMU's user network, mounts its disk (/dev/vda, ext4)
// on /mnt, and powers off on "poweroff".
//
// Everything comes from Debian packages: the kernel is fetched with
// apt-get download (once, kept in a cache directory), the rest is taken
// from this machine's busybox-static, dropbear-bin and openssh-sftp-server.
// The guest is built once per test binary. When something it needs is
// missing, Guest skips the test, unless IMGBUILD_INTEGRATION=1 is set,
// where it fails it.
//
// qemutest.go is over 500 lines: it builds the tiny guest (kernel found or
// fetched from Debian, module order, the initramfs writer) in one pass whose
// parts are used nowhere else.
package qemutest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// Guest is the tiny machine: boot Kernel with Initrd and Append, attach
// Disk.
type Guest struct {
	Kernel string
	Initrd string
	Append string
	// Disk is a raw ext4 file system holding /hello ("hello from the tiny
	// guest's disk\n"); the guest mounts it on /mnt.
	Disk string
}

// Into puts the guest's files into dir/tiny/ (disk.raw, vmlinuz,
// initramfs.cpio.gz), as a workspace's inputs: hard links (a symbolic link
// out of the workspace is refused as an input), or copies on another file
// system.
func (g *Guest) Into(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "tiny"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"disk.raw": g.Disk, "vmlinuz": g.Kernel, "initramfs.cpio.gz": g.Initrd} {
		p := filepath.Join(dir, "tiny", name)
		if err := os.Link(target, p); err == nil {
			continue
		}
		if err := output.CopyFile(target, p); err != nil {
			t.Fatal(err)
		}
	}
}

// HelloFile is the content of /hello on the guest's disk.
const HelloFile = "hello from the tiny guest's disk\n"

var (
	once    sync.Once
	guest   *Guest
	skipWhy string
	failErr error
)

// CacheDir is where the kernel package and the built guest are kept:
// $IMGBUILD_TEST_CACHE, else /var/cache/imgbuild/test.
func CacheDir() string {
	if d := os.Getenv("IMGBUILD_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/cache/imgbuild/test"
}

// RequireQEMU skips the test unless qemu-system-x86_64 and qemu-img are
// installed.
func RequireQEMU(t testing.TB) {
	t.Helper()
	testkit.RequireProgram(t, "qemu-system-x86_64", "qemu-system-x86")
	testkit.RequireProgram(t, "qemu-img", "qemu-utils")
}

// TinyGuest returns the tiny machine, building it on first use.
func TinyGuest(t testing.TB) *Guest {
	t.Helper()
	RequireQEMU(t)
	once.Do(func() { guest, skipWhy, failErr = build(t) })
	if failErr != nil {
		t.Fatalf("building the tiny guest: %v", failErr)
	}
	testkit.Require(t, skipWhy == "", skipWhy)
	return guest
}

// needs are the host files the guest is made of, and their packages.
var needs = map[string]string{
	"/bin/busybox":                 "busybox-static",
	"/usr/sbin/dropbear":           "dropbear-bin",
	"/usr/bin/dropbearkey":         "dropbear-bin",
	"/usr/lib/openssh/sftp-server": "openssh-sftp-server",
	"/usr/sbin/mkfs.ext4":          "e2fsprogs",
}

// modules are the kernel modules the guest loads (with what they need):
// its disk and network, and for installs from an ISO, the SATA CD drives
// QEMU's q35 machine has and their file system.
var modules = []string{"virtio_pci", "virtio_blk", "virtio_net", "virtio_rng", "crc32c_generic", "ext4", "ahci", "sr_mod", "isofs"}

// modulesMark is the file in an extracted kernel package naming the
// modules it was pruned for: a cache pruned for fewer is extracted again.
const modulesMark = ".imgbuild-modules"

func build(t testing.TB) (*Guest, string, error) {
	for p, pkg := range needs {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Sprintf("%s is missing: apt-get install %s", p, pkg), nil
		}
	}
	cache := CacheDir()
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, "", err
	}
	kdir, why, err := kernel(cache)
	if why != "" || err != nil {
		return nil, why, err
	}
	vmlinuz, _ := filepath.Glob(filepath.Join(kdir, "boot/vmlinuz-*"))
	if len(vmlinuz) != 1 {
		return nil, "", fmt.Errorf("no single kernel in %s: %v", kdir, vmlinuz)
	}
	version := strings.TrimPrefix(filepath.Base(vmlinuz[0]), "vmlinuz-")
	moddir := filepath.Join(kdir, "lib/modules", version)
	if _, err := os.Stat(moddir); err != nil {
		moddir = filepath.Join(kdir, "usr/lib/modules", version)
	}
	order, err := moduleOrder(moddir, modules)
	if err != nil {
		return nil, "", err
	}
	img := &initramfs{}
	if err := img.populate(moddir, order); err != nil {
		return nil, "", err
	}
	data, err := img.bytes()
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(append(data, []byte(vmlinuz[0])...))
	dir := filepath.Join(cache, "tiny-"+hex.EncodeToString(sum[:6]))
	g := &Guest{
		Kernel: vmlinuz[0],
		Initrd: filepath.Join(dir, "initramfs.cpio.gz"),
		Disk:   filepath.Join(dir, "disk.raw"),
		Append: "console=ttyS0,115200n8 quiet loglevel=4 panic=-1",
	}
	if _, err := os.Stat(g.Disk); err == nil {
		return g, "", nil
	}
	tmp, err := os.MkdirTemp(cache, ".tiny-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(tmp)
	os.Chmod(tmp, 0o755)
	if err := os.WriteFile(filepath.Join(tmp, "initramfs.cpio.gz"), data, 0o644); err != nil {
		return nil, "", err
	}
	seed := filepath.Join(tmp, "seed")
	os.MkdirAll(seed, 0o755)
	os.WriteFile(filepath.Join(seed, "hello"), []byte(HelloFile), 0o644)
	raw := filepath.Join(tmp, "disk.raw")
	f, _ := os.Create(raw)
	f.Truncate(32 << 20)
	f.Close()
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "tiny", "-d", seed, raw).CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("mkfs.ext4: %v: %s", err, out)
	}
	os.RemoveAll(seed)
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		if _, serr := os.Stat(g.Disk); serr != nil {
			return nil, "", err
		}
	}
	return g, "", nil
}

// kernel returns a directory holding Debian's kernel package, extracted:
// one already in the cache, else linux-image-amd64's current one,
// downloaded with apt-get.
func kernel(cache string) (dir, why string, err error) {
	have, _ := filepath.Glob(filepath.Join(cache, "linux-image-*", "boot", "vmlinuz-*"))
	sort.Strings(have)
	for i := len(have) - 1; i >= 0; i-- {
		d := filepath.Dir(filepath.Dir(have[i]))
		if mark, err := os.ReadFile(filepath.Join(d, modulesMark)); err == nil && string(mark) == strings.Join(modules, " ") {
			return d, "", nil
		}
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", "apt-get is missing: the tiny guest's kernel comes from Debian's linux-image-amd64", nil
	}
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").Output()
	if err != nil {
		return "", "apt-cache depends linux-image-amd64 failed (run apt-get update): " + err.Error(), nil
	}
	pkg := ""
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Depends: "); ok && strings.HasPrefix(v, "linux-image-") {
			pkg = strings.TrimSpace(v)
			break
		}
	}
	if pkg == "" {
		return "", "apt-cache names no kernel package for linux-image-amd64 (run apt-get update)", nil
	}
	dl, err := os.MkdirTemp(cache, ".download-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(dl)
	cmd := exec.Command("apt-get", "download", "-q", pkg)
	cmd.Dir = dl
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Sprintf("apt-get download %s failed (is the Debian mirror reachable?): %v: %s", pkg, err, lastLine(string(out))), nil
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(debs) != 1 {
		return "", "", fmt.Errorf("apt-get download %s left %v", pkg, debs)
	}
	x := filepath.Join(dl, "x")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], x).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("dpkg-deb -x %s: %v: %s", debs[0], err, out)
	}
	if err := prune(x); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(x, modulesMark), []byte(strings.Join(modules, " ")), 0o644); err != nil {
		return "", "", err
	}
	sum := sha256.Sum256([]byte(strings.Join(modules, " ")))
	dir = filepath.Join(cache, pkg+"-"+hex.EncodeToString(sum[:4]))
	if err := os.Rename(x, dir); err != nil {
		if _, serr := os.Stat(dir); serr != nil {
			return "", "", err
		}
	}
	return dir, "", nil
}

// prune keeps of an extracted kernel package only the kernel and the
// modules the guest loads: some megabytes instead of hundreds.
func prune(x string) error {
	for _, d := range []string{"usr/share", "usr/lib/linux"} {
		os.RemoveAll(filepath.Join(x, d))
	}
	dirs, _ := filepath.Glob(filepath.Join(x, "lib/modules/*"))
	more, _ := filepath.Glob(filepath.Join(x, "usr/lib/modules/*"))
	for _, moddir := range append(dirs, more...) {
		keep, err := moduleOrder(moddir, modules)
		if err != nil {
			return err
		}
		wanted := map[string]bool{}
		for _, k := range keep {
			wanted[k] = true
		}
		err = filepath.WalkDir(moddir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".ko") {
				return err
			}
			rel, _ := filepath.Rel(moddir, p)
			if !wanted[rel] {
				return os.Remove(p)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// moduleOrder returns the module files (relative to moddir) to load, the
// dependencies of each before it. A module's dependencies are read from the
// "depends=" entry of its .modinfo section (the package ships no
// modules.dep: depmod makes it when the package is installed).
func moduleOrder(moddir string, want []string) ([]string, error) {
	byName := map[string]string{}
	err := filepath.WalkDir(moddir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			rel, _ := filepath.Rel(moddir, p)
			byName[strings.ReplaceAll(strings.TrimSuffix(d.Name(), ".ko"), "-", "_")] = rel
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var order []string
	seen := map[string]bool{}
	var visit func(name string) error
	visit = func(name string) error {
		rel, ok := byName[name]
		if !ok || seen[rel] {
			return nil // built into the kernel, or done
		}
		seen[rel] = true
		deps, err := moduleDepends(filepath.Join(moddir, rel))
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(strings.ReplaceAll(d, "-", "_")); err != nil {
				return err
			}
		}
		order = append(order, rel)
		return nil
	}
	for _, w := range want {
		if err := visit(w); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// moduleDepends reads the modules a .ko file needs.
func moduleDepends(p string) ([]string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, nil
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range strings.Split(string(data), "\x00") {
		if v, ok := strings.CutPrefix(kv, "depends="); ok {
			if v == "" {
				return nil, nil
			}
			return strings.Split(v, ","), nil
		}
	}
	return nil, nil
}

// initramfs is a newc cpio archive being built.
type initramfs struct {
	entries map[string]entry
}

type entry struct {
	mode         uint32 // with the file type bits
	data         []byte // content, or a symbolic link's target
	major, minor int    // of a device
}

const (
	sIFREG = 0o100000
	sIFDIR = 0o040000
	sIFLNK = 0o120000
	sIFCHR = 0o020000
)

func (r *initramfs) add(name string, mode uint32, data []byte) {
	if r.entries == nil {
		r.entries = map[string]entry{}
	}
	name = strings.TrimPrefix(filepath.Clean("/"+name), "/")
	for d := filepath.Dir(name); d != "." && d != "/"; d = filepath.Dir(d) {
		if _, ok := r.entries[d]; !ok {
			r.entries[d] = entry{mode: sIFDIR | 0o755}
		}
	}
	r.entries[name] = entry{mode: mode, data: data}
}

func (r *initramfs) file(name string, mode uint32, content string) {
	r.add(name, sIFREG|mode, []byte(content))
}

// copyFile adds a host file under the same name (its content, following
// links).
func (r *initramfs) copyFile(host, name string) error {
	data, err := os.ReadFile(host)
	if err != nil {
		return err
	}
	fi, err := os.Stat(host)
	if err != nil {
		return err
	}
	r.add(name, sIFREG|uint32(fi.Mode().Perm()), data)
	return nil
}

// copyProgram adds a program and the shared libraries ldd says it needs.
func (r *initramfs) copyProgram(host, name string) error {
	if err := r.copyFile(host, name); err != nil {
		return err
	}
	out, err := exec.Command("ldd", host).Output()
	if err != nil {
		return nil // static
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		var lib string
		switch {
		case len(f) >= 3 && f[1] == "=>":
			lib = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			lib = f[0]
		}
		if lib == "" || !strings.HasPrefix(lib, "/") {
			continue
		}
		if err := r.copyFile(lib, lib); err != nil {
			return fmt.Errorf("%s needs %s: %w", host, lib, err)
		}
	}
	return nil
}

// initScript is the guest's /init: set up, take the SSH key as systemd or
// cloud-init would, then become busybox init (which runs dropbear and
// powers off).
const initScript = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mkdir -p /proc /sys /dev /run /tmp /mnt /var/log
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
for m in $(cat /etc/modules); do insmod /lib/modules/$m || echo "tiny: insmod $m failed"; done
hostname tiny
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
mkdir -p /root/.ssh && chmod 700 /root /root/.ssh
: > /root/.ssh/authorized_keys
# The build's key as systemd takes it: an SMBIOS type 11 credential.
strings -n 20 /sys/firmware/dmi/tables/DMI | sed -n 's/^io\.systemd\.credential:ssh\.authorized_keys\.root=//p' >> /root/.ssh/authorized_keys
# ... or as cloud-init does: a NoCloud seed named by the SMBIOS serial.
serial=$(cat /sys/class/dmi/id/product_serial 2>/dev/null)
case "$serial" in
ds=nocloud*s=http*)
	url=${serial##*;s=}
	wget -q -O /tmp/user-data "${url}user-data" && echo "tiny: fetched ${url}user-data"
	sed -n 's/^ *- *\(ssh-[a-z0-9-]* .*\)$/\1/p' /tmp/user-data >> /root/.ssh/authorized_keys ;;
esac
chmod 600 /root/.ssh/authorized_keys
echo "tiny: $(wc -l < /root/.ssh/authorized_keys) authorized key(s)"
if [ -b /dev/vda ]; then mount -t ext4 /dev/vda /mnt && echo "tiny: /dev/vda mounted on /mnt"; fi
# Booted from an ISO (qemutest.ISO), the guest shows what it was given:
# the command line typed at the boot prompt, a file fetched over HTTP
# (tiny.fetch=URL), a file of a CD (tiny.cdfile=NAME), and with
# tiny.key=URL or tiny.key=cd:NAME it takes its SSH key from there alone;
# it writes what it did to /run/tiny.log too.
cmdline=$(cat /proc/cmdline)
case " $cmdline " in *" tiny."*)
	say() { echo "tiny: $*"; echo "$*" >> /run/tiny.log; }
	say "cmdline: $cmdline"
	case "$cmdline" in *tiny.cdfile=*|*tiny.key=cd:*)
		n=0; while [ ! -b /dev/sr1 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done ;;
	esac
	for d in /dev/sr*; do [ -b "$d" ] && mkdir -p /cd/${d##*/} && mount -t iso9660 -o ro $d /cd/${d##*/} 2>/dev/null; done
	for w in $cmdline; do
		case "$w" in
		tiny.fetch=*) u=${w#tiny.fetch=}; say "fetched $u: $(wget -q -O - "$u" || echo FAILED)" ;;
		tiny.cdfile=*) f=${w#tiny.cdfile=}; say "cd $f: $(cat /cd/*/"$f" 2>/dev/null || echo MISSING)" ;;
		tiny.key=cd:*) f=${w#tiny.key=cd:}; cat /cd/*/"$f" > /root/.ssh/authorized_keys && say "key from cd $f" ;;
		tiny.key=*) u=${w#tiny.key=}; wget -q -O /root/.ssh/authorized_keys "$u" && say "key from $u" ;;
		esac
	done
	say "$(wc -l < /root/.ssh/authorized_keys) authorized key(s) now" ;;
esac
echo "tiny: starting dropbear"
exec /bin/busybox init
`

const inittab = `::sysinit:/bin/true
::respawn:/usr/sbin/dropbear -F -E -s -p 22
::shutdown:/bin/echo "tiny: powering off"
::shutdown:/bin/sync
::shutdown:/bin/umount -a -r
`

func (r *initramfs) populate(moddir string, order []string) error {
	r.file("init", 0o755, initScript)
	// The kernel gives /init this as its output: the serial console.
	r.entries["dev"] = entry{mode: sIFDIR | 0o755}
	r.entries["dev/console"] = entry{mode: sIFCHR | 0o600, major: 5, minor: 1}
	if err := r.copyFile("/bin/busybox", "bin/busybox"); err != nil {
		return err
	}
	if err := r.copyProgram("/usr/sbin/dropbear", "usr/sbin/dropbear"); err != nil {
		return err
	}
	if err := r.copyProgram("/usr/lib/openssh/sftp-server", "usr/lib/openssh/sftp-server"); err != nil {
		return err
	}
	r.add("usr/lib/sftp-server", sIFLNK|0o777, []byte("openssh/sftp-server"))
	r.file("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\n")
	r.file("etc/group", 0o644, "root:x:0:\n")
	r.file("etc/shells", 0o644, "/bin/sh\n")
	r.file("etc/inittab", 0o644, inittab)
	// A host key made now rather than on the first connection, which
	// takes seconds under TCG.
	keyDir, err := os.MkdirTemp("", "tiny-dropbear-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(keyDir)
	// Every kind: dropbear offers RSA signatures even without an RSA key,
	// and fails the client that picks them.
	for _, kind := range []string{"ed25519", "ecdsa", "rsa"} {
		name := "dropbear_" + kind + "_host_key"
		if out, err := exec.Command("dropbearkey", "-t", kind, "-f", filepath.Join(keyDir, name)).CombinedOutput(); err != nil {
			return fmt.Errorf("dropbearkey -t %s: %v: %s", kind, err, out)
		}
		if err := r.copyFile(filepath.Join(keyDir, name), "etc/dropbear/"+name); err != nil {
			return err
		}
	}
	r.add("root", sIFDIR|0o700, nil)
	var names []string
	for _, m := range order {
		base := filepath.Base(m)
		if err := r.copyFile(filepath.Join(moddir, m), "lib/modules/"+base); err != nil {
			return err
		}
		names = append(names, base)
	}
	r.file("etc/modules", 0o644, strings.Join(names, "\n")+"\n")
	return nil
}

// bytes writes the archive: newc cpio, gzip-compressed, entries sorted so
// that parents come first.
func (r *initramfs) bytes() ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	ino := uint32(1)
	write := func(name string, e entry) error {
		hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, e.mode, 0, 0, 1, 0, len(e.data), 0, 0, e.major, e.minor, len(name)+1, 0)
		ino++
		if _, err := io.WriteString(zw, hdr+name+"\x00"); err != nil {
			return err
		}
		pad(zw, 110+len(name)+1)
		if _, err := zw.Write(e.data); err != nil {
			return err
		}
		pad(zw, len(e.data))
		return nil
	}
	for _, n := range names {
		if err := write(n, r.entries[n]); err != nil {
			return nil, err
		}
	}
	if err := write("TRAILER!!!", entry{}); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func pad(w io.Writer, n int) {
	if r := n % 4; r != 0 {
		w.Write(make([]byte, 4-r))
	}
}
