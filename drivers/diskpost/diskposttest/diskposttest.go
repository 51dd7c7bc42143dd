// Package diskposttest is what the tests of the disk post-processors
// share: a real disk image made with qemu-img and the artifact a qemu()
// build would pass on for it, a post-processor's environment, and a
// post-processor decoded from settings as a description would give them.
package diskposttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
)

// Pattern is what the start of every disk Artifact makes holds, after
// its boot sector.
const Pattern = "made by imgbuild's disk post-processor tests\n"

// Artifact makes a qcow2 disk of size bytes at output/<build>/<build>.qcow2
// in the workspace ws, holding an MBR boot signature and Pattern, and
// returns the artifact a qemu() build passes on for it. It needs
// qemu-img (it skips, or fails under IMGBUILD_INTEGRATION=1, without).
func Artifact(t testing.TB, ws, build string, size int64) *engine.Artifact {
	t.Helper()
	testkit.RequireProgram(t, "qemu-img", "qemu-utils")
	dir := filepath.Join(ws, "output", build)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(t.TempDir(), "disk.raw")
	data := make([]byte, 512, 1<<20)
	data[510], data[511] = 0x55, 0xaa
	data = append(data, strings.Repeat(Pattern, 1<<20/len(Pattern)-12)...)
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(raw, size); err != nil {
		t.Fatal(err)
	}
	rel := filepath.Join("output", build, build+".qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, filepath.Join(ws, rel)).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, out)
	}
	return &engine.Artifact{Build: build, Driver: "qemu", ID: rel, Platform: "local", Files: []string{rel},
		Fields: map[string]any{"disk": rel, "format": "qcow2", "directory": filepath.Join("output", build), "kernel": "", "initrd": "", "append": ""}}
}

// Env returns the environment of a post-processor of build (a qemu()
// build) in the workspace ws, and the recorder of its events.
func Env(t testing.TB, ws, build string) (*engine.PostEnv, *testkit.Recorder) {
	t.Helper()
	ui, rec := testkit.NewUI(build, "qemu")
	e := &engine.PostEnv{UI: ui, Build: build, Driver: "qemu", Workspace: ws, WorkDir: t.TempDir()}
	e.OutputSet()
	return e, rec
}

// New decodes settings (Go values: strings, ints, bools, lists, maps) as
// a description would give them to def, and makes its post-processor;
// the decoding error, such as a Validate message, is returned as it is.
func New(t testing.TB, def *engine.PostProcessorDef, settings map[string]any) (engine.PostProcessor, error) {
	t.Helper()
	cfg, err := testkit.Decode(def.Schema, value.FromGo(settings).(*value.Map))
	if err != nil {
		return nil, err
	}
	return def.New(cfg)
}

// MustNew is New, failing the test on an error.
func MustNew(t testing.TB, def *engine.PostProcessorDef, settings map[string]any) engine.PostProcessor {
	t.Helper()
	p, err := New(t, def, settings)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
