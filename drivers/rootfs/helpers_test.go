package rootfs_test

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/all/alltest"
	"github.com/imgbuild/imgbuild/drivers/chroot/chroottest"
	"github.com/imgbuild/imgbuild/drivers/rootfs"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

// registry has every built-in driver.
var registry = alltest.Registry

// result is a run of a description.
type result struct{ *alltest.Result }

// runDescription evaluates and runs file in its workspace, with a TempDir
// of its own so that leftovers can be counted.
func runDescription(t *testing.T, ctx context.Context, dir, file string, on func(event.Event)) *result {
	t.Helper()
	d, err := description.Load(description.Options{File: filepath.Join(dir, file), Registry: registry()})
	if err != nil {
		t.Fatal(err)
	}
	ev := &testkit.Recorder{}
	ev.OnEvent(on)
	return &result{alltest.Run(t, ctx, d, ev, 2*time.Minute)}
}

// leftovers lists what a run left in its TempDir, processes in trees and
// mounts.
func (r *result) leftovers() []string {
	out := r.TempLeft()
	out = append(out, chroottest.ProcessesIn(r.Temp)...)
	for _, m := range chroottest.MountsUnder(r.Temp) {
		out = append(out, "mount "+m)
	}
	return out
}

// nothingLeft fails the test when the run left anything (leftovers).
func (r *result) nothingLeft(t *testing.T) {
	t.Helper()
	if left := r.leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// requireDebootstrap skips the test (fails it under IMGBUILD_INTEGRATION=1)
// without root, debootstrap or the mirror.
func requireDebootstrap(t *testing.T) string {
	t.Helper()
	testkit.RequireRoot(t)
	testkit.RequireProgram(t, "debootstrap", "debootstrap")
	testkit.RequireProgram(t, "mkfs.ext4", "e2fsprogs")
	testkit.RequireProgram(t, "qemu-img", "qemu-utils")
	return requireMirror(t)
}

// requireMirror returns this machine's mirror, skipping the test when it
// cannot be reached.
func requireMirror(t *testing.T) string {
	t.Helper()
	m := rootfs.HostMirror()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(m + "/dists/bookworm/Release")
	if err == nil {
		resp.Body.Close()
	}
	testkit.Require(t, err == nil && resp.StatusCode == 200, "the Debian mirror "+m+" cannot be reached")
	return m
}

// closedPort returns a 127.0.0.1 port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
