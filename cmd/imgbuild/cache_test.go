package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/rootfs/checkpoint"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// checkpointCache is a cache of its own for the test, through the
// environment imgbuild reads, with an entry per package list given: a
// tree of 100 KiB each, made in that order (the last most recently used).
func checkpointCache(t *testing.T, packages ...string) *checkpoint.Cache {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "checkpoints")
	t.Setenv(checkpoint.DirEnv, dir)
	t.Setenv(checkpoint.MaxSizeEnv, "1G")
	c := &checkpoint.Cache{Dir: dir, MaxSize: 1 << 30}
	for _, p := range packages {
		tree := filepath.Join(t.TempDir(), "tree")
		testkit.WriteFile(t, filepath.Join(tree, "etc/os-release"), "ID=debian\n")
		testkit.WriteFile(t, filepath.Join(tree, "usr/lib/blob"), strings.Repeat(p, 100<<10/len(p)))
		k := checkpointKey(p)
		if _, err := c.Save(context.Background(), k, "sha256:"+strings.Repeat("ab", 32), "Sat, 10 May 2025 10:00:00 UTC", tree); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func checkpointKey(pkgs string) checkpoint.Key {
	return checkpoint.Key{Suite: "bookworm", Mirror: "http://deb.debian.org/debian", Variant: "minbase", Components: []string{"main"}, Packages: strings.Fields(pkgs), Arch: "amd64", Debootstrap: "sha256:00"}
}

func TestCacheLsListsTheCheckpoints(t *testing.T) {
	c := checkpointCache(t, "hello", "curl jq")
	dir := t.TempDir()
	code, out, errs := imgbuild(t, dir, "cache", "ls")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("want a header, 2 rows, a blank line and the total:\n%s", out)
	}
	if !regexp.MustCompile(`^CHECKPOINT +SIZE +CREATED +LAST USED +MADE FROM$`).MatchString(lines[0]) {
		t.Errorf("header %q", lines[0])
	}
	row := `^` + regexp.QuoteMeta(checkpointKey("curl jq").ID()) + ` +1\d\d KiB +\d{4}-\d\d-\d\d \d\d:\d\d +\d{4}-\d\d-\d\d \d\d:\d\d +bookworm minbase from http://deb.debian.org/debian \(main\), amd64, packages curl jq$`
	if !regexp.MustCompile(row).MatchString(lines[1]) {
		t.Errorf("first row (most recently used):\n%s\nwant it to match %s", lines[1], row)
	}
	if !strings.HasPrefix(lines[2], checkpointKey("hello").ID()+" ") {
		t.Errorf("second row %q", lines[2])
	}
	if want := `^2 checkpoints, \d+ KiB of 1.0 GiB in ` + regexp.QuoteMeta(c.Dir) + `$`; !regexp.MustCompile(want).MatchString(lines[4]) {
		t.Errorf("total %q, want it to match %s", lines[4], want)
	}

	code, out, _ = imgbuild(t, dir, "cache", "ls", "--json")
	var doc struct {
		Dir         string
		MaxSize     int64 `json:"max_size"`
		Checkpoints []struct {
			ID       string
			Key      checkpoint.Key
			Size     int64
			Archive  string
			LastUsed time.Time `json:"last_used"`
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	if doc.Dir != c.Dir || doc.MaxSize != 1<<30 || len(doc.Checkpoints) != 2 || doc.Checkpoints[1].Key.Packages[0] != "hello" || doc.Checkpoints[0].Size < 100<<10 || doc.Checkpoints[0].LastUsed.IsZero() {
		t.Errorf("json:\n%s", out)
	}
}

func TestCacheLsOfAnEmptyCache(t *testing.T) {
	c := checkpointCache(t)
	code, out, _ := imgbuild(t, t.TempDir(), "cache", "ls")
	if want := "no checkpoints in " + c.Dir + ": rootfs() builds keep one when they debootstrap\n"; code != 0 || out != want {
		t.Errorf("exit %d, %q; want %q", code, out, want)
	}
	code, out, _ = imgbuild(t, t.TempDir(), "cache", "ls", "--json")
	if code != 0 || !strings.Contains(out, `"checkpoints": []`) {
		t.Errorf("exit %d, json %s", code, out)
	}
}

func TestCacheLsShowsADamagedCheckpoint(t *testing.T) {
	c := checkpointCache(t, "hello")
	id := checkpointKey("hello").ID()
	if err := os.WriteFile(filepath.Join(c.Dir, id, "meta.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, out, _ := imgbuild(t, t.TempDir(), "cache", "ls")
	if want := id + "  -     -        -          damaged (it has a damaged meta.json: unexpected end of JSON input; cache prune removes it)"; !strings.Contains(out, want) {
		t.Errorf("ls:\n%s\nwant a row %q", out, want)
	}
	code, out, _ := imgbuild(t, t.TempDir(), "cache", "prune", "--older-than", "30d")
	if want := "removed " + id + ": damaged (it has a damaged meta.json"; code != 0 || !strings.Contains(out, want) {
		t.Errorf("exit %d:\n%s\nwant %q", code, out, want)
	}
}

func TestCachePrune(t *testing.T) {
	c := checkpointCache(t, "a", "b", "c")
	old := time.Now().Add(-72 * time.Hour)
	if err := os.Chtimes(filepath.Join(c.Dir, checkpointKey("a").ID(), "used"), old, old); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	code, out, errs := imgbuild(t, dir, "cache", "prune", "--older-than", "2d")
	want := `^removed ` + regexp.QuoteMeta(checkpointKey("a").ID()) + ` \(1\d\d KiB, last used [-0-9: ]+\)
removed 1 checkpoint \(1\d\d KiB\); left: 2 checkpoints \(\d+ KiB\) in ` + regexp.QuoteMeta(c.Dir) + "\n$"
	if code != 0 || !regexp.MustCompile(want).MatchString(out) {
		t.Errorf("--older-than 2d: exit %d %s\n%s\nwant it to match\n%s", code, errs, out, want)
	}

	code, out, _ = imgbuild(t, dir, "cache", "prune", "--older-than", "2d")
	if want := "nothing to remove: 2 checkpoints ("; code != 0 || !strings.HasPrefix(out, want) {
		t.Errorf("again: exit %d %q", code, out)
	}

	code, out, _ = imgbuild(t, dir, "cache", "prune", "--max-size", "150K")
	if code != 0 || !strings.HasPrefix(out, "removed "+checkpointKey("b").ID()+" (") || !strings.Contains(out, "left: 1 checkpoint (") {
		t.Errorf("--max-size 150K: exit %d\n%s\nwant b (the least recently used) removed", code, out)
	}

	code, out, _ = imgbuild(t, dir, "cache", "prune", "--all")
	if code != 0 || !strings.Contains(out, "removed "+checkpointKey("c").ID()) || !strings.Contains(out, "left: 0 checkpoints (0 B)") {
		t.Errorf("--all: exit %d\n%s", code, out)
	}
	if entries, _ := c.List(context.Background()); len(entries) != 0 {
		t.Errorf("%d checkpoints left", len(entries))
	}
}

func TestCachePruneBadInput(t *testing.T) {
	checkpointCache(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "cache prune: say what to remove: --all, --older-than 30d (not used for 30 days) or --max-size 5G (the least recently used beyond 5 GiB)"},
		{[]string{"--all", "--older-than", "3d"}, "cache prune: --all removes every checkpoint: give it alone, or --older-than and --max-size without it"},
		{[]string{"--older-than", "soon"}, `--older-than: "soon" is not an age: write it like "30d", "36h" or "90m"`},
		{[]string{"--max-size", "big"}, `--max-size: "big" is not a size: write it like "2G", "1536M" or a number of bytes`},
		{[]string{"--max-size", "0"}, "--max-size 0 would remove every checkpoint: say --all"},
		{[]string{"everything"}, "cache prune takes no arguments (got everything): say what to remove with --all, --older-than or --max-size"},
	} {
		code, _, errs := imgbuild(t, t.TempDir(), append([]string{"cache", "prune"}, tc.args...)...)
		if code != exitInvalid || !strings.Contains(errs, tc.want) {
			t.Errorf("prune %v: exit %d, %q\nwant exit %d and %q", tc.args, code, errs, exitInvalid, tc.want)
		}
	}
	t.Setenv(checkpoint.MaxSizeEnv, "lots")
	code, _, errs := imgbuild(t, t.TempDir(), "cache", "ls")
	if want := `IMGBUILD_CHECKPOINT_MAX_SIZE="lots": "lots" is not a size`; code != exitInvalid || !strings.Contains(errs, want) {
		t.Errorf("exit %d, %q; want %q", code, errs, want)
	}
}
