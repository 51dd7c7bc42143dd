// Package chroottest helps test what runs inside root file system trees:
// it makes a tiny tree from this machine's busybox-static (a real /bin/sh
// and the usual commands, in a few milliseconds instead of a debootstrap),
// and finds what a test may have left behind: processes whose root is in a
// tree, mounts under a directory.
//
// When root or busybox-static is missing, its functions skip the test
// through testkit.Skip: a failure under IMGBUILD_INTEGRATION=1, where CI
// must not skip.
package chroottest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

// busyboxPaths are where busybox-static puts its binary.
var busyboxPaths = []string{"/bin/busybox", "/usr/bin/busybox"}

// Busybox returns the path of a statically linked busybox, or skips the
// test.
func Busybox(t testing.TB) string {
	t.Helper()
	for _, p := range busyboxPaths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// A static binary has no interpreter (PT_INTERP) naming ld.so.
		if !strings.Contains(string(data[:min(len(data), 4096)]), "/lib64/ld-linux") {
			return p
		}
	}
	testkit.Skip(t, "busybox-static is not installed: apt-get install busybox-static")
	return ""
}

// Applets are the commands BusyboxTree links to busybox.
var Applets = []string{
	"sh", "cat", "echo", "ls", "sleep", "mkdir", "rm", "touch", "test", "printf",
	"env", "kill", "mount", "setsid", "sync", "stat", "head", "tail", "true", "false",
	"readlink", "id", "ps", "sed", "grep", "chmod", "wc", "dd", "uname", "poweroff",
}

// BusyboxTree makes a small root file system tree in a fresh directory and
// returns its path: /bin/busybox with Applets linked to it, and the
// directories a Debian tree has (/etc, /proc, /sys, /dev, /run, /tmp,
// /root, /usr/sbin, /var). It needs root for nothing; running commands in
// it does.
func BusyboxTree(t testing.TB) string {
	t.Helper()
	bb := Busybox(t)
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "run", "tmp", "root", "usr/sbin", "usr/bin", "var/cache", "var/lib"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range Applets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// ProcessesIn lists the processes (as "pid command") whose root directory
// is root or inside it: commands a chroot left running.
func ProcessesIn(root string) []string {
	abs, _ := filepath.Abs(root)
	return processes(func(dir, _ string) bool {
		r, err := os.Readlink(filepath.Join(dir, "root"))
		return err == nil && (r == abs || strings.HasPrefix(r, abs+"/"))
	})
}

// ProcessesNamed lists the processes (as "pid command line") whose command
// line contains s.
func ProcessesNamed(s string) []string {
	return processes(func(_, line string) bool { return strings.Contains(line, s) })
}

// processes lists the processes but this one (as "pid command line") for
// which match, given the process's /proc directory and command line, holds.
func processes(match func(dir, line string) bool) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		cmd, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		line := strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " ")
		if match(dir, line) {
			out = append(out, fmt.Sprintf("%d %s", pid, line))
		}
	}
	return out
}

// MountsUnder lists this machine's mount points at or below dir.
func MountsUnder(dir string) []string {
	abs, _ := filepath.Abs(dir)
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		if f[4] == abs || strings.HasPrefix(f[4], abs+"/") {
			out = append(out, f[4])
		}
	}
	return out
}
