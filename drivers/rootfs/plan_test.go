package rootfs_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/rootfs"
	"github.com/imgbuild/imgbuild/drivers/rootfs/checkpoint"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

func planText(t *testing.T, dir string) (*engine.Plan, string) {
	t.Helper()
	d, err := description.Load(description.Options{File: filepath.Join(dir, "images.star"), Registry: registry()})
	if err != nil {
		t.Fatal(err)
	}
	p := engine.MakePlan(d.Graph, registry(), d.Root)
	var b bytes.Buffer
	if err := p.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return p, b.String()
}

func TestThePlanSaysWhetherDebootstrapReusesACheckpoint(t *testing.T) {
	testkit.RequireProgram(t, "debootstrap", "debootstrap")
	cacheDir := t.TempDir()
	t.Setenv(checkpoint.DirEnv, cacheDir)
	mirror := "http://127.0.0.1:9/debian"
	dir := testkit.Workspace(t, map[string]string{"images.star": `
rootfs(name = "base", mirror = "` + mirror + `", packages = ["hello"], formats = ["tar"])
rootfs(name = "plain", mirror = "` + mirror + `", formats = ["tar"], checkpoint = False)
`})
	key, err := rootfs.CheckpointKey(&rootfs.Config{Suite: "bookworm", Variant: "minbase", Components: []string{"main"}, Packages: []string{"hello"}}, mirror, "bookworm")
	if err != nil {
		t.Fatal(err)
	}
	plan, text := planText(t, dir)
	want := "debootstrap: runs, no checkpoint " + key.ID() + " yet (keeps one)"
	if got := strings.Join(plan.Builds[0].Notes, "\n"); got != want {
		t.Errorf("notes before a checkpoint: %q\nwant %q", got, want)
	}
	if len(plan.Builds[1].Notes) != 0 {
		t.Errorf("checkpoint = False has notes: %q", plan.Builds[1].Notes)
	}

	tree := filepath.Join(t.TempDir(), "tree")
	testkit.WriteFile(t, filepath.Join(tree, "etc/debian_version"), "12.10\n")
	c := &checkpoint.Cache{Dir: cacheDir, MaxSize: 1 << 30}
	if _, err := c.Save(context.Background(), key, "sha256:00", "", tree); err != nil {
		t.Fatal(err)
	}
	_, text = planText(t, dir)
	want = "\n    debootstrap: reuses checkpoint " + key.ID() + " (made "
	if !strings.Contains(text, want) || !strings.Contains(text, "), unless the mirror's bookworm Release has changed since\n") {
		t.Errorf("plan:\n%s\nwant a line %q", text, want)
	}
}
