package chroot_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/chroot"
	"github.com/imgbuild/imgbuild/drivers/chroot/chroottest"
	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// newComm makes a busybox tree and a communicator for it, closed at the
// end of the test, which then checks that nothing was left running or
// mounted.
func newComm(t *testing.T, opts chroot.Options) (*chroot.Comm, string) {
	t.Helper()
	testkit.RequireRoot(t)
	root := chroottest.BusyboxTree(t)
	c, err := chroot.New(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		noLeftovers(t, root)
	})
	return c, root
}

// noLeftovers fails the test if a process still has its root in the tree
// or something is mounted under it.
func noLeftovers(t *testing.T, root string) {
	t.Helper()
	// What was killed or unmounted may take a moment to go.
	gone := func() bool { return len(chroottest.ProcessesIn(root)) == 0 && len(chroottest.MountsUnder(root)) == 0 }
	if !testkit.Poll(testkit.WaitTimeout, gone) {
		t.Fatalf("left behind in %s: processes %v, mounts %v", root, chroottest.ProcessesIn(root), chroottest.MountsUnder(root))
	}
}

func run(t *testing.T, c engine.Communicator, command string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	status, err := c.Run(context.Background(), &engine.Command{Command: command, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatalf("Run(%q): %v", command, err)
	}
	return stdout.String(), stderr.String(), status
}

func TestRunReturnsExitStatusAndSeparatesStdoutFromStderr(t *testing.T) {
	c, _ := newComm(t, chroot.Options{})
	out, errOut, status := run(t, c, "echo out; echo err >&2; exit 7")
	if out != "out\n" || errOut != "err\n" || status != 7 {
		t.Fatalf("got stdout %q, stderr %q, status %d; want out, err, 7", out, errOut, status)
	}
	_, _, status = run(t, c, "kill -s KILL $$")
	if status != 128+9 {
		t.Errorf("a command killed by SIGKILL: status %d, want %d", status, 128+9)
	}
	var in bytes.Buffer
	in.WriteString("from stdin\n")
	var stdout bytes.Buffer
	if _, err := c.Run(context.Background(), &engine.Command{Command: "cat", Stdin: &in, Stdout: &stdout}); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "from stdin\n" {
		t.Errorf("stdin: got %q", stdout.String())
	}
}

func TestCommandsSeeTheTreeAsTheWholeMachine(t *testing.T) {
	c, root := newComm(t, chroot.Options{})
	if err := os.WriteFile(filepath.Join(root, "etc/marker"), []byte("tree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, status := run(t, c, `cat /etc/marker; echo "pid=$$"; ls /proc/1/cmdline >/dev/null && cat /proc/1/cmdline | tr -d '\0' 2>/dev/null; echo; ls /dev; echo "cwd=$(pwd) home=$HOME"`)
	if status != 0 {
		t.Fatalf("status %d: %s", status, errOut)
	}
	// The first process of the command's PID namespace is the helper.
	for _, want := range []string{"tree\n", "imgbuild-chroot-helper", "null", "urandom", "pts", "shm", "cwd=/ home=/root"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// /sys is read-only; /run is a tmpfs of the command's own.
	_, _, status = run(t, c, "touch /sys/x 2>/dev/null")
	if status == 0 {
		t.Error("/sys is writable inside the tree")
	}
	run(t, c, "echo x > /run/left")
	if _, err := os.Stat(filepath.Join(root, "run/left")); err == nil {
		t.Error("a file written to /run reached the tree: /run is not a tmpfs")
	}
}

func TestHostileEnvironmentValuesArriveExactly(t *testing.T) {
	values := map[string]string{
		"QUOTES":  `it's "quoted"`,
		"SUBST":   "$(touch /tmp/pwned) `touch /tmp/pwned2` ${HOME}",
		"NEWLINE": "line1\nline2\n",
		"UNICODE": "héllo — 世界 🚀",
		"GLOB":    "* ? [a-z]",
		"DASH":    "-n -e",
		"EMPTY":   "",
		"BACKSL":  `a\nb\\c`,
	}
	c, root := newComm(t, chroot.Options{Env: values})
	// Through the communicator's environment, and through the command line
	// as the shell provisioner passes them.
	vars, err := shellquote.Env(map[string]string{"VIA_LINE": values["SUBST"] + values["NEWLINE"] + values["QUOTES"]})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range values {
		out, _, _ := run(t, c, `printf '%s' "$`+name+`"`)
		if out != want {
			t.Errorf("%s: got %q, want %q", name, out, want)
		}
	}
	out, _, _ := run(t, c, vars+`printf '%s' "$VIA_LINE"`)
	if want := values["SUBST"] + values["NEWLINE"] + values["QUOTES"]; out != want {
		t.Errorf("VIA_LINE: got %q, want %q", out, want)
	}
	for _, f := range []string{"tmp/pwned", "tmp/pwned2"} {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			t.Errorf("a value was run as a command: %s exists", f)
		}
	}
	if _, err := chroot.New(root, chroot.Options{Env: map[string]string{"BAD NAME": "x"}}); err == nil || !strings.Contains(err.Error(), `"BAD NAME" is not a valid environment variable name`) {
		t.Errorf("a bad variable name: %v", err)
	}
}

func TestABackgroundProcessDiesWithTheCommandsNamespace(t *testing.T) {
	c, root := newComm(t, chroot.Options{})
	// A daemon that detaches itself and holds no output open, and one that
	// keeps stdout open: neither survives the command, and Run does not
	// wait for them.
	start := time.Now()
	_, _, status := run(t, c, "setsid sleep 1001 </dev/null >/dev/null 2>&1 & sleep 1002 & echo started")
	if status != 0 {
		t.Fatalf("status %d", status)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run waited %s for background processes", d)
	}
	noLeftovers(t, root)
	if left := chroottest.ProcessesNamed("sleep 100"); len(left) > 0 {
		t.Fatalf("background processes survived: %v", left)
	}
}

func TestCancellingRunKillsEverythingEvenWhatIgnoresSIGTERM(t *testing.T) {
	c, root := newComm(t, chroot.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	var stdout testkit.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, &engine.Command{Command: "trap '' TERM; (trap '' TERM; sleep 1003) & echo ready; sleep 1004", Stdout: &stdout})
		done <- err
	}()
	testkit.Eventually(t, "the command to say ready", func() bool { return strings.Contains(stdout.String(), "ready") })
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "command cancelled") {
			t.Errorf("cancelled Run returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("cancellation took %s", d)
	}
	noLeftovers(t, root)
	if _, err := c.Run(ctx, &engine.Command{Command: "true"}); err == nil {
		t.Error("Run on a cancelled context ran")
	}
}

func TestMountsAreNeverVisibleOnThisMachine(t *testing.T) {
	cache := t.TempDir()
	if err := os.WriteFile(filepath.Join(cache, "pkg.deb"), []byte("deb"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, root := newComm(t, chroot.Options{Binds: []chroot.Bind{{Source: cache, Target: "/var/cache/apt/archives"}}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout testkit.Buffer
	done := make(chan struct{})
	go func() {
		c.Run(ctx, &engine.Command{Command: "cat /var/cache/apt/archives/pkg.deb; echo; echo new > /var/cache/apt/archives/new.deb; echo ready; sleep 1005", Stdout: &stdout})
		close(done)
	}()
	testkit.Eventually(t, "the command to say ready", func() bool { return strings.Contains(stdout.String(), "ready") })
	if m := chroottest.MountsUnder(root); len(m) > 0 {
		t.Errorf("mounts visible on this machine while a command runs: %v", m)
	}
	if !strings.HasPrefix(stdout.String(), "deb\n") {
		t.Errorf("the bound directory's file is not seen inside: %q", stdout.String())
	}
	if b, _ := os.ReadFile(filepath.Join(cache, "new.deb")); string(b) != "new\n" {
		t.Errorf("a file written to the bound directory did not reach it: %q", b)
	}
	cancel()
	<-done
	if entries, _ := os.ReadDir(filepath.Join(root, "var/cache/apt/archives")); len(entries) > 0 {
		t.Errorf("the bind's target in the tree is not empty on this machine: %v", entries)
	}
}

func TestUploadAndDownloadFollowLinksAsTheChrootWould(t *testing.T) {
	c, root := newComm(t, chroot.Options{})
	outside := t.TempDir()
	// /var/run -> /run (absolute, as in Debian) and a link that would
	// escape the tree if followed on this machine.
	for link, target := range map[string]string{"var/run": "/run", "etc/escape": outside, "etc/up": "../../../../.."} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	for dst, want := range map[string]string{
		"/var/run/x.pid":   "run/x.pid",
		"/etc/escape/file": strings.TrimPrefix(outside, "/") + "/file",
		"/etc/up/etc/pw":   "etc/pw",
	} {
		if err := c.Upload(ctx, dst, strings.NewReader("data"), engine.Transfer{}); err != nil {
			t.Fatalf("Upload %s: %v", dst, err)
		}
		if b, err := os.ReadFile(filepath.Join(root, want)); err != nil || string(b) != "data" {
			t.Errorf("Upload %s: not at <tree>/%s (%v)", dst, want, err)
		}
		var got bytes.Buffer
		if err := c.Download(ctx, dst, &got, engine.Transfer{}); err != nil || got.String() != "data" {
			t.Errorf("Download %s: %q, %v", dst, got.String(), err)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) > 0 {
		t.Errorf("an upload escaped the tree into %s: %v", outside, entries)
	}
	out, _, _ := run(t, c, "cat /run/x.pid")
	if out != "" {
		// /run is the command's own tmpfs: the tree's /run is hidden.
		t.Logf("note: /run inside = %q", out)
	}
	var got bytes.Buffer
	err := c.Download(ctx, "/etc/missing", &got, engine.Transfer{})
	if err == nil || !strings.Contains(err.Error(), "/etc/missing") {
		t.Errorf("downloading a missing file: %v", err)
	}
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a"), []byte("A"), 0o600)
	if err := c.UploadDir(ctx, "/var/run/dir", src, engine.Transfer{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "run/dir/a")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("UploadDir through /var/run: %v %v", fi, err)
	}
	dst := t.TempDir()
	if err := c.DownloadDir(ctx, "/var/run/dir", dst, engine.Transfer{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a")); string(b) != "A" {
		t.Errorf("DownloadDir: %q", b)
	}
}

func TestPolicyRCDAndResolvConfLastOnlyTheSession(t *testing.T) {
	testkit.RequireRoot(t)
	host, err := os.ReadFile("/etc/resolv.conf")
	testkit.Require(t, err == nil, "this machine has no /etc/resolv.conf to copy into the tree")
	for _, tc := range []struct {
		name  string
		setup func(root string)
		check func(t *testing.T, root string)
	}{
		{"a symbolic link", func(root string) {
			os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(root, "etc/resolv.conf"))
		}, func(t *testing.T, root string) {
			if l, err := os.Readlink(filepath.Join(root, "etc/resolv.conf")); err != nil || l != "../run/systemd/resolve/stub-resolv.conf" {
				t.Errorf("resolv.conf link not restored: %q %v", l, err)
			}
		}},
		{"a file", func(root string) {
			os.WriteFile(filepath.Join(root, "etc/resolv.conf"), []byte("nameserver 10.0.2.3\n"), 0o600)
		}, func(t *testing.T, root string) {
			fi, _ := os.Stat(filepath.Join(root, "etc/resolv.conf"))
			if b, _ := os.ReadFile(filepath.Join(root, "etc/resolv.conf")); string(b) != "nameserver 10.0.2.3\n" || fi.Mode().Perm() != 0o600 {
				t.Errorf("resolv.conf not restored: %q %v", b, fi.Mode())
			}
		}},
		{"nothing", func(root string) {}, func(t *testing.T, root string) {
			if _, err := os.Lstat(filepath.Join(root, "etc/resolv.conf")); err == nil {
				t.Error("resolv.conf left in a tree that had none")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := chroottest.BusyboxTree(t)
			tc.setup(root)
			c, err := chroot.New(root, chroot.Options{PolicyRCD: true, ResolvConf: true})
			if err != nil {
				t.Fatal(err)
			}
			out, _, _ := run(t, c, "cat /etc/resolv.conf; /usr/sbin/policy-rc.d nginx start; echo status=$?")
			if !strings.HasPrefix(out, string(host)) || !strings.HasSuffix(out, "status=101\n") {
				t.Errorf("during the session: %q", out)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			tc.check(t, root)
			if _, err := os.Stat(filepath.Join(root, "usr/sbin/policy-rc.d")); err == nil {
				t.Error("policy-rc.d left in the tree")
			}
			noLeftovers(t, root)
		})
	}
	t.Run("replaced by a package", func(t *testing.T) {
		root := chroottest.BusyboxTree(t)
		c, err := chroot.New(root, chroot.Options{ResolvConf: true})
		if err != nil {
			t.Fatal(err)
		}
		run(t, c, "rm /etc/resolv.conf; ln -s ../run/resolvconf/resolv.conf /etc/resolv.conf")
		c.Close()
		if l, _ := os.Readlink(filepath.Join(root, "etc/resolv.conf")); l != "../run/resolvconf/resolv.conf" {
			t.Errorf("a package's resolv.conf was undone: %q", l)
		}
	})
	t.Run("the tree's own policy-rc.d", func(t *testing.T) {
		root := chroottest.BusyboxTree(t)
		own := "#!/bin/sh\nexit 0\n"
		os.WriteFile(filepath.Join(root, "usr/sbin/policy-rc.d"), []byte(own), 0o755)
		c, err := chroot.New(root, chroot.Options{PolicyRCD: true})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if b, _ := os.ReadFile(filepath.Join(root, "usr/sbin/policy-rc.d")); string(b) != own {
			t.Errorf("the tree's policy-rc.d was changed: %q", b)
		}
	})
}

func TestNewRefusesWhatIsNotARootFileSystem(t *testing.T) {
	testkit.RequireRoot(t)
	_, err := chroot.New(t.TempDir(), chroot.Options{})
	if err == nil || !strings.Contains(err.Error(), "has no /bin/sh: is it a root file system?") {
		t.Errorf("an empty directory: %v", err)
	}
	_, err = chroot.New(filepath.Join(t.TempDir(), "missing"), chroot.Options{})
	if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("a missing directory: %v", err)
	}
}

func TestRunIsolatedLeavesNoMountAndNoProcess(t *testing.T) {
	testkit.RequireRoot(t)
	dir := t.TempDir()
	var stdout bytes.Buffer
	// A mount left behind on purpose, and a process in the background.
	status, err := chroot.RunIsolated(context.Background(),
		[]string{"sh", "-c", "mount -t tmpfs none " + shellquote.Quote(dir) + " && touch " + shellquote.Quote(dir+"/in-tmpfs") + " && tr -d '\\0' < /proc/1/cmdline && (sleep 1006 &) && exit 3"},
		[]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, "/", &stdout, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if status != 3 {
		t.Errorf("status %d, want 3", status)
	}
	if got := strings.TrimSpace(stdout.String()); got != "imgbuild-chroot-helper" {
		t.Errorf("the first process the command sees is %q: not in a PID namespace of its own", got)
	}
	if m := chroottest.MountsUnder(dir); len(m) > 0 {
		t.Errorf("mount left behind: %v", m)
	}
	if _, err := os.Stat(filepath.Join(dir, "in-tmpfs")); err == nil {
		t.Error("the tmpfs's file is visible on this machine")
	}
	if p := chroottest.ProcessesNamed("sleep 1006"); len(p) > 0 {
		t.Errorf("process left behind: %v", p)
	}
	_, err = chroot.RunIsolated(context.Background(), []string{"no-such-program-here"}, []string{"PATH=/usr/bin:/bin"}, "/", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "no-such-program-here not found in /usr/bin:/bin: install it") {
		t.Errorf("a missing program: %v", err)
	}
}

// TestKillingImgbuildKillsTheNamespace runs a command from a child process
// (this test binary, in the role of imgbuild), kills that process with
// SIGKILL and checks that the command and its mounts went with it.
func TestKillingImgbuildKillsTheNamespace(t *testing.T) {
	if root := os.Getenv("CHROOT_TEST_KILLED_ROOT"); root != "" {
		c, err := chroot.New(root, chroot.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c.Run(context.Background(), &engine.Command{Command: "sleep 1007 & echo ready; sleep 1008", Stdout: os.Stdout})
		return
	}
	testkit.RequireRoot(t)
	root := chroottest.BusyboxTree(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillingImgbuildKillsTheNamespace$")
	cmd.Env = append(os.Environ(), "CHROOT_TEST_KILLED_ROOT="+root)
	var out testkit.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the command to say ready", func() bool { return strings.Contains(out.String(), "ready") })
	if len(chroottest.ProcessesIn(root)) == 0 {
		t.Fatal("the command is not running in the tree")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	noLeftovers(t, root)
}

// TestNotRootIsAClearErrorBeforeAnythingStarts runs New as nobody.
func TestNotRootIsAClearErrorBeforeAnythingStarts(t *testing.T) {
	if os.Getenv("CHROOT_TEST_AS_NOBODY") == "1" {
		_, err := chroot.New("/", chroot.Options{})
		os.Stdout.WriteString("ERR: " + err.Error() + "\n")
		return
	}
	testkit.WantAsNobody(t, "^TestNotRootIsAClearErrorBeforeAnythingStarts$", "CHROOT_TEST_AS_NOBODY=1",
		"ERR: the chroot communicator needs root (it mounts file systems and changes root in private namespaces), but imgbuild runs as uid 65534: run it as root, for example with sudo")
}
