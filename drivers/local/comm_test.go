package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

func newComm(t *testing.T, env map[string]string) *Comm {
	t.Helper()
	c, err := NewCommunicator(t.TempDir(), env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func run(t *testing.T, c *Comm, cmd string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	status, err := c.Run(context.Background(), &engine.Command{Command: cmd, Stdout: &out, Stderr: &errb})
	if err != nil {
		t.Fatalf("Run(%q): %v", cmd, err)
	}
	return out.String(), errb.String(), status
}

func TestRunIsInTheRootWithItsEnvironment(t *testing.T) {
	c := newComm(t, map[string]string{"GREETING": "hello world"})
	out, _, status := run(t, c, `pwd; echo "$IMGBUILD_ROOT"; echo "$GREETING"; echo oops >&2`)
	if status != 0 {
		t.Fatalf("status %d", status)
	}
	want := c.Root() + "\n" + c.Root() + "\n" + "hello world\n"
	if real, err := filepath.EvalSymlinks(c.Root()); err == nil && real != c.Root() {
		want = real + "\n" + c.Root() + "\nhello world\n"
	}
	if out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	_, errOut, _ := run(t, c, "echo oops >&2")
	if errOut != "oops\n" {
		t.Errorf("stderr = %q", errOut)
	}
}

func TestRunReportsExitStatusNotError(t *testing.T) {
	c := newComm(t, nil)
	if _, _, status := run(t, c, "exit 3"); status != 3 {
		t.Errorf("exit 3: status %d", status)
	}
	if _, _, status := run(t, c, "kill -9 $$"); status != 128+9 {
		t.Errorf("killed by SIGKILL: status %d, want 137", status)
	}
}

func TestRunPassesStdin(t *testing.T) {
	c := newComm(t, nil)
	var out bytes.Buffer
	_, err := c.Run(context.Background(), &engine.Command{Command: "tr a-z A-Z", Stdin: strings.NewReader("abc"), Stdout: &out})
	if err != nil || out.String() != "ABC" {
		t.Fatalf("got %q, %v", out.String(), err)
	}
}

func TestCancelKillsTheWholeProcessGroup(t *testing.T) {
	c := newComm(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		// The child ignores SIGTERM, so only the group's SIGKILL ends it.
		_, err := c.Run(ctx, &engine.Command{Command: `(trap '' TERM; exec sleep 300) & echo $! > child.pid; wait`})
		done <- err
	}()
	pid := testkit.WaitForPIDFile(t, filepath.Join(c.Root(), "child.pid"))
	if !testkit.Alive(pid) {
		t.Fatalf("child %d is not running", pid)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want an error wrapping context.Canceled", err)
		}
	case <-time.After(killGrace + 5*time.Second):
		t.Fatal("Run did not return after cancel")
	}
	testkit.WaitGone(t, pid, "the child that ignores SIGTERM")
	if d := time.Since(start); d > killGrace+5*time.Second {
		t.Errorf("cancel took %s", d)
	}
}

func TestCancelledBeforeStartRunsNothing(t *testing.T) {
	c := newComm(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Run(ctx, &engine.Command{Command: "touch ran"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.Root(), "ran")); err == nil {
		t.Error("the command ran")
	}
}

func TestBackgroundOutputDoesNotBlockRun(t *testing.T) {
	c := newComm(t, nil)
	var out bytes.Buffer
	start := time.Now()
	status, err := c.Run(context.Background(), &engine.Command{Command: "sleep 60 & echo $! > bg.pid; echo started", Stdout: &out})
	if err != nil || status != 0 || out.String() != "started\n" {
		t.Fatalf("status %d, err %v, out %q", status, err, out.String())
	}
	if d := time.Since(start); d > killGrace+3*time.Second {
		t.Errorf("Run waited %s for a background child", d)
	}
	pid := testkit.WaitForPIDFile(t, filepath.Join(c.Root(), "bg.pid"))
	if !testkit.Alive(pid) {
		t.Fatal("the background child is already gone")
	}
	c.Close()
	testkit.WaitGone(t, pid, "the background child")
}

func TestPathsAreInsideTheRoot(t *testing.T) {
	c := newComm(t, nil)
	ctx := context.Background()
	for _, p := range []string{"/etc/app.conf", "etc/app.conf", "/etc/../etc/./app.conf", "//etc/app.conf"} {
		if err := c.Upload(ctx, p, strings.NewReader("x"), engine.Transfer{}); err != nil {
			t.Fatalf("Upload(%q): %v", p, err)
		}
		b, err := os.ReadFile(filepath.Join(c.Root(), "etc/app.conf"))
		if err != nil || string(b) != "x" {
			t.Fatalf("Upload(%q) did not write <root>/etc/app.conf: %q %v", p, b, err)
		}
	}
	if got, _ := c.CommandPath("/tmp/s.sh"); got != filepath.Join(c.Root(), "tmp/s.sh") {
		t.Errorf("CommandPath = %q", got)
	}
	for _, p := range []string{"../x", "/../x", "/a/../../x", ".."} {
		err := c.Upload(ctx, p, strings.NewReader("x"), engine.Transfer{})
		want := `path "` + p + `" leads outside the build's directory ` + c.Root() + `: ".." may not climb above it`
		if err == nil || err.Error() != want {
			t.Errorf("Upload(%q) = %v, want %q", p, err, want)
		}
		if err := c.Download(ctx, p, io.Discard, engine.Transfer{}); err == nil {
			t.Errorf("Download(%q) succeeded", p)
		}
		if err := c.UploadDir(ctx, p, t.TempDir(), engine.Transfer{}); err == nil {
			t.Errorf("UploadDir(%q) succeeded", p)
		}
		if err := c.DownloadDir(ctx, p, t.TempDir(), engine.Transfer{}); err == nil {
			t.Errorf("DownloadDir(%q) succeeded", p)
		}
	}
	// A symbolic link leading out of the root is not followed.
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(c.Root(), "escape")); err != nil {
		t.Fatal(err)
	}
	err := c.Upload(ctx, "/escape/x", strings.NewReader("x"), engine.Transfer{})
	if want := "uploading to /escape/x: it leads outside the build's directory through a symbolic link"; err == nil || err.Error() != want {
		t.Errorf("Upload through a link out of the root: %v, want %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(outside, "x")); err == nil {
		t.Error("a file was written outside the root")
	}
}

func TestUploadSetsModeAndReportsProgress(t *testing.T) {
	c := newComm(t, nil)
	data := bytes.Repeat([]byte("a"), 200<<10)
	var last, total int64
	err := c.Upload(context.Background(), "/opt/bin/tool", bytes.NewReader(data), engine.Transfer{
		Size: int64(len(data)), Mode: 0o750,
		Progress: func(done, tot int64) { last, total = done, tot },
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(c.Root(), "opt/bin/tool"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o750 || fi.Size() != int64(len(data)) {
		t.Errorf("mode %v size %d", fi.Mode(), fi.Size())
	}
	if last != int64(len(data)) || total != int64(len(data)) {
		t.Errorf("last progress %d/%d", last, total)
	}
	// Mode 0 means 0644.
	if err := c.Upload(context.Background(), "plain", strings.NewReader(""), engine.Transfer{}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(c.Root(), "plain")); fi.Mode().Perm() != 0o644 {
		t.Errorf("default mode %v", fi.Mode())
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		return 0, errors.New("disk on fire")
	}
	r.n++
	return copy(p, "partial"), nil
}

func TestFailedUploadRemovesTheFile(t *testing.T) {
	c := newComm(t, nil)
	err := c.Upload(context.Background(), "/data/f", &failingReader{}, engine.Transfer{})
	if err == nil || err.Error() != "uploading to /data/f: disk on fire" {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.Root(), "data/f")); err == nil {
		t.Error("the half-written file is still there")
	}
}

func TestUploadDirAndDownloadDirKeepModesAndLinks(t *testing.T) {
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "sub/deeper"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "sub/secret"), []byte("s"), 0o600))
	must(t, os.WriteFile(filepath.Join(src, "sub/deeper/f"), []byte("f"), 0o644))
	must(t, os.Symlink("sub/secret", filepath.Join(src, "link")))
	must(t, os.Symlink("/etc/passwd", filepath.Join(src, "abs-link")))
	must(t, os.Chmod(filepath.Join(src, "sub"), 0o750))

	c := newComm(t, nil)
	var done, total int64
	err := c.UploadDir(context.Background(), "/srv/app", src, engine.Transfer{Progress: func(d, t int64) { done, total = d, t }})
	if err != nil {
		t.Fatal(err)
	}
	if done != 12 || total != 12 {
		t.Errorf("progress %d/%d, want 12/12", done, total)
	}
	check := func(dir string) {
		t.Helper()
		for name, mode := range map[string]os.FileMode{"run.sh": 0o755, "sub/secret": 0o600, "sub/deeper/f": 0o644, "sub": 0o750 | os.ModeDir} {
			fi, err := os.Lstat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != mode {
				t.Errorf("%s: mode %v, want %v", name, fi.Mode(), mode)
			}
		}
		for name, target := range map[string]string{"link": "sub/secret", "abs-link": "/etc/passwd"} {
			got, err := os.Readlink(filepath.Join(dir, name))
			if err != nil || got != target {
				t.Errorf("%s: link to %q (%v), want %q", name, got, err, target)
			}
		}
	}
	check(filepath.Join(c.Root(), "srv/app"))

	dst := filepath.Join(t.TempDir(), "back")
	if err := c.DownloadDir(context.Background(), "/srv/app", dst, engine.Transfer{}); err != nil {
		t.Fatal(err)
	}
	check(dst)
}

func TestDownload(t *testing.T) {
	c := newComm(t, nil)
	must(t, os.MkdirAll(filepath.Join(c.Root(), "var/log"), 0o755))
	must(t, os.WriteFile(filepath.Join(c.Root(), "var/log/build.log"), []byte("done\n"), 0o644))
	var buf bytes.Buffer
	if err := c.Download(context.Background(), "/var/log/build.log", &buf, engine.Transfer{}); err != nil || buf.String() != "done\n" {
		t.Fatalf("got %q, %v", buf.String(), err)
	}
	err := c.Download(context.Background(), "/var/log", &buf, engine.Transfer{})
	if err == nil || err.Error() != "downloading /var/log: it is a directory, not a file" {
		t.Errorf("err = %v", err)
	}
}

func TestCloseRemovesDirectoriesMadeForUploadsOnceEmpty(t *testing.T) {
	c := newComm(t, nil)
	ctx := context.Background()
	must(t, c.Upload(ctx, "/tmp/imgbuild-script-1.sh", strings.NewReader("x"), engine.Transfer{}))
	must(t, c.Upload(ctx, "/etc/app/app.conf", strings.NewReader("x"), engine.Transfer{}))
	must(t, c.UploadDir(ctx, "/var/empty", t.TempDir(), engine.Transfer{}))
	must(t, os.Remove(filepath.Join(c.Root(), "tmp/imgbuild-script-1.sh")))
	must(t, c.Close())
	if _, err := os.Stat(filepath.Join(c.Root(), "tmp")); err == nil {
		t.Error("tmp/ is still there though it only held a removed upload")
	}
	if _, err := os.Stat(filepath.Join(c.Root(), "etc/app/app.conf")); err != nil {
		t.Error("a directory holding an upload was removed")
	}
	if _, err := os.Stat(filepath.Join(c.Root(), "var/empty")); err != nil {
		t.Error("an uploaded (empty) directory was removed")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
