package checkpoint_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imgbuild/imgbuild/drivers/rootfs/checkpoint"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

var ctx = context.Background()

func key(pkgs ...string) checkpoint.Key {
	return checkpoint.Key{Suite: "bookworm", Mirror: "http://deb.debian.org/debian", Variant: "minbase", Components: []string{"main"}, Packages: pkgs, Arch: "amd64", Debootstrap: "sha256:abc"}
}

// tree makes a small root file system tree with what a debootstrapped
// one has: owners, setuid, symbolic and hard links, a device, extended
// attributes, a file of n random bytes.
func tree(t *testing.T, n int) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "tree")
	testkit.WriteFile(t, filepath.Join(root, "etc/os-release"), "ID=debian\n")
	testkit.WriteFile(t, filepath.Join(root, "usr/bin/su"), "#!/bin/sh\n")
	data := make([]byte, n)
	rand.Read(data)
	testkit.WriteFile(t, filepath.Join(root, "usr/lib/blob"), string(data))
	must(t, unix.Chmod(filepath.Join(root, "usr/bin/su"), 0o4755))
	must(t, os.Symlink("usr/bin", filepath.Join(root, "bin")))
	must(t, os.Link(filepath.Join(root, "usr/bin/su"), filepath.Join(root, "usr/bin/su2")))
	if os.Geteuid() == 0 {
		must(t, os.Chown(filepath.Join(root, "etc/os-release"), 1234, 5678))
		must(t, os.MkdirAll(filepath.Join(root, "dev"), 0o755))
		must(t, unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	}
	if err := unix.Setxattr(filepath.Join(root, "usr/bin/su"), "user.imgbuild", []byte("kept"), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
		t.Fatal(err)
	}
	return root
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func cache(t *testing.T) *checkpoint.Cache {
	return &checkpoint.Cache{Dir: filepath.Join(t.TempDir(), "checkpoints"), MaxSize: checkpoint.DefaultMaxSize}
}

func hash(t *testing.T, root string) string {
	t.Helper()
	s, err := checkpoint.HashTree(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	return s.Hash
}

func TestASavedTreeIsRestoredAsItWas(t *testing.T) {
	c := cache(t)
	src := tree(t, 4096)
	saved, err := c.Save(ctx, key("hello"), "sha256:r1", "Sat, 10 May 2025", src)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Entry.Hash != hash(t, src) {
		t.Errorf("the entry's hash %s is not the source tree's %s", saved.Entry.Hash, hash(t, src))
	}
	dst := filepath.Join(t.TempDir(), "rootfs")
	e, err := c.Restore(ctx, key("hello"), "sha256:r1", dst)
	if err != nil || e == nil {
		t.Fatalf("Restore = %v, %v; want the entry", e, err)
	}
	if got := hash(t, dst); got != saved.Entry.Hash {
		t.Errorf("restored tree hashes to %s, want %s", got, saved.Entry.Hash)
	}
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(dst, "usr/bin/su"), &st))
	if st.Mode&0o7777 != 0o4755 || st.Nlink != 2 {
		t.Errorf("su: mode %o, %d links; want 4755 and 2 (the hard link kept)", st.Mode&0o7777, st.Nlink)
	}
	if os.Geteuid() == 0 {
		must(t, unix.Lstat(filepath.Join(dst, "dev/null"), &st))
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
			t.Errorf("dev/null is not the device 1:3: mode %o rdev %d", st.Mode, st.Rdev)
		}
		must(t, unix.Lstat(filepath.Join(dst, "etc/os-release"), &st))
		if st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("os-release owned by %d:%d, want 1234:5678", st.Uid, st.Gid)
		}
	}
	if link, _ := os.Readlink(filepath.Join(dst, "bin")); link != "usr/bin" {
		t.Errorf("bin -> %q", link)
	}
	// What a build does with its copy does not reach the cache.
	testkit.WriteFile(t, filepath.Join(dst, "etc/provisioned"), "yes")
	again := filepath.Join(t.TempDir(), "rootfs")
	if _, err := c.Restore(ctx, key("hello"), "sha256:r1", again); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(again, "etc/provisioned")); err == nil {
		t.Error("a change to a restored tree reached the checkpoint")
	}
}

func TestTheHashSeesEveryKindOfChange(t *testing.T) {
	src := tree(t, 100)
	base := hash(t, src)
	changes := map[string]func(root string) error{
		"content": func(r string) error {
			return os.WriteFile(filepath.Join(r, "etc/os-release"), []byte("ID=ubuntu\n"), 0o644)
		},
		"mode":  func(r string) error { return os.Chmod(filepath.Join(r, "usr/bin/su"), 0o755) },
		"owner": func(r string) error { return os.Lchown(filepath.Join(r, "usr/lib/blob"), 1, 1) },
		"mtime": func(r string) error {
			return os.Chtimes(filepath.Join(r, "usr/lib/blob"), time.Unix(1, 0), time.Unix(1, 0))
		},
		"new file": func(r string) error { return os.WriteFile(filepath.Join(r, "etc/new"), nil, 0o644) },
		"removed":  func(r string) error { return os.Remove(filepath.Join(r, "usr/lib/blob")) },
		"link": func(r string) error {
			os.Remove(filepath.Join(r, "bin"))
			return os.Symlink("usr/sbin", filepath.Join(r, "bin"))
		},
		"xattr": func(r string) error {
			return unix.Lsetxattr(filepath.Join(r, "usr/bin/su"), "user.imgbuild", []byte("changed"), 0)
		},
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			if name == "owner" && os.Geteuid() != 0 {
				testkit.RequireRoot(t)
			}
			dst := filepath.Join(t.TempDir(), "copy")
			c := cache(t)
			if _, err := c.Save(ctx, key(), "sha256:r", "", src); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Restore(ctx, key(), "sha256:r", dst); err != nil {
				t.Fatal(err)
			}
			if hash(t, dst) != base {
				t.Fatal("a copy hashes differently")
			}
			if err := change(dst); errors.Is(err, unix.ENOTSUP) {
				t.Skip("no extended attributes here")
			} else if err != nil {
				t.Fatal(err)
			}
			if hash(t, dst) == base {
				t.Errorf("a change of %s leaves the hash as it was", name)
			}
		})
	}
}

func TestWithoutAnEntryRestoreIsAMiss(t *testing.T) {
	c := cache(t)
	dst := filepath.Join(t.TempDir(), "rootfs")
	e, err := c.Restore(ctx, key(), "sha256:r1", dst)
	if e != nil || err != nil {
		t.Fatalf("Restore = %v, %v; want nil, nil", e, err)
	}
	if _, err := os.Stat(dst); err == nil {
		t.Error("a miss made the tree")
	}
}

func TestTheKeyCoversWhatChangesTheTree(t *testing.T) {
	if key("a", "b").ID() != key("b", "a", "b").ID() {
		t.Error("the order or repetition of packages changes the key")
	}
	base := key("a")
	if !strings.HasPrefix(base.ID(), "bookworm-minbase-amd64-") {
		t.Errorf("id %q does not start with suite-variant-arch", base.ID())
	}
	other := []checkpoint.Key{key("a", "c"), key()}
	for _, f := range []func(k *checkpoint.Key){
		func(k *checkpoint.Key) { k.Suite = "trixie" },
		func(k *checkpoint.Key) { k.Mirror = "http://127.0.0.1/debian" },
		func(k *checkpoint.Key) { k.Variant = "buildd" },
		func(k *checkpoint.Key) { k.Components = []string{"main", "contrib"} },
		func(k *checkpoint.Key) { k.Arch = "arm64" },
		func(k *checkpoint.Key) { k.Debootstrap = "sha256:def" },
	} {
		k := key("a")
		f(&k)
		other = append(other, k)
	}
	for _, k := range other {
		if k.ID() == base.ID() {
			t.Errorf("%+v has the same id as %+v", k, base)
		}
	}
}

func TestAnEntryFromAnotherArchiveIsStale(t *testing.T) {
	c := cache(t)
	if _, err := c.Save(ctx, key(), "sha256:1111111111111111aaaa", "Sat, 10 May 2025 10:00:00 UTC", tree(t, 10)); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "rootfs")
	_, err := c.Restore(ctx, key(), "sha256:2222222222222222bbbb", dst)
	if !errors.Is(err, checkpoint.ErrStale) {
		t.Fatalf("Restore error %v; want ErrStale", err)
	}
	want := "checkpoint " + key().ID() + " was installed from an older archive (Release of Sat, 10 May 2025 10:00:00 UTC, sha256:111111111111; the mirror's is now sha256:222222222222)"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("message %q\nwant it to contain %q", err, want)
	}
	if _, err := os.Stat(dst); err == nil {
		t.Error("a stale entry was restored")
	}
	// Saving again replaces it.
	s, err := c.Save(ctx, key(), "sha256:2222222222222222bbbb", "", tree(t, 10))
	if err != nil {
		t.Fatal(err)
	}
	if s.Replaced == nil || s.Replaced.Archive != "sha256:1111111111111111aaaa" {
		t.Errorf("Replaced = %+v; want the stale entry", s.Replaced)
	}
	if list, _ := c.List(ctx); len(list) != 1 {
		t.Errorf("%d entries after replacing; want 1", len(list))
	}
}

func TestADamagedEntryIsDiscarded(t *testing.T) {
	for name, damage := range map[string]func(entry string) error{
		"a file changed": func(e string) error {
			return os.WriteFile(filepath.Join(e, "tree/etc/os-release"), []byte("ID=evil\n"), 0o644)
		},
		"a file gone":      func(e string) error { return os.Remove(filepath.Join(e, "tree/usr/lib/blob")) },
		"metadata damaged": func(e string) error { return os.WriteFile(filepath.Join(e, "meta.json"), []byte("{\"id\": "), 0o644) },
		"metadata gone":    func(e string) error { return os.Remove(filepath.Join(e, "meta.json")) },
	} {
		t.Run(name, func(t *testing.T) {
			c := cache(t)
			if _, err := c.Save(ctx, key(), "sha256:r", "", tree(t, 1000)); err != nil {
				t.Fatal(err)
			}
			entry := filepath.Join(c.Dir, key().ID())
			must(t, damage(entry))
			dst := filepath.Join(t.TempDir(), "rootfs")
			_, err := c.Restore(ctx, key(), "sha256:r", dst)
			if !errors.Is(err, checkpoint.ErrDamaged) {
				t.Fatalf("Restore error %v; want ErrDamaged", err)
			}
			want := map[string]string{
				"a file changed":   "checkpoint is damaged: the tree of checkpoint " + key().ID() + " hashes to sha256:",
				"a file gone":      "(changed on disk since)",
				"metadata damaged": "checkpoint is damaged: " + entry + " has a damaged meta.json: unexpected end of JSON input",
				"metadata gone":    "checkpoint is damaged: " + entry + " has no readable meta.json (open " + entry + "/meta.json: no such file or directory)",
			}[name]
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q\nwant it to contain %q", err, want)
			}
			if _, err := os.Stat(entry); err == nil {
				t.Error("the damaged entry is still in the cache")
			}
			if _, err := os.Stat(dst); err == nil {
				t.Error("the damaged tree was left at the destination")
			}
		})
	}
}

func TestTheLeastRecentlyUsedEntriesAreEvictedBeyondTheBound(t *testing.T) {
	c := cache(t)
	var ids []string
	save := func(pkg string) *checkpoint.Saved {
		t.Helper()
		s, err := c.Save(ctx, key(pkg), "sha256:r", "", tree(t, 200<<10))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.Entry.ID)
		return s
	}
	first := save("a")
	c.MaxSize = first.Entry.Size*2 + first.Entry.Size/2 // room for two
	save("b")
	// a is used again: b is now the least recently used.
	if _, err := c.Restore(ctx, key("a"), "sha256:r", filepath.Join(t.TempDir(), "x")); err != nil {
		t.Fatal(err)
	}
	s := save("c")
	if len(s.Evicted) != 1 || s.Evicted[0].ID != ids[1] {
		t.Fatalf("evicted %v; want only b (%s)", entryIDs(s.Evicted), ids[1])
	}
	list, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(entryIDs(list), " "), ids[2]+" "+ids[0]; got != want {
		t.Errorf("entries, most recently used first: %s; want %s", got, want)
	}
}

func entryIDs(es []*checkpoint.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestATreeLargerThanTheBoundIsNotKept(t *testing.T) {
	c := cache(t)
	c.MaxSize = 64 << 10
	_, err := c.Save(ctx, key(), "sha256:r", "", tree(t, 1<<20))
	want := "more than the checkpoint cache's bound of 64 KiB: not kept (raise IMGBUILD_CHECKPOINT_MAX_SIZE)"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "the tree takes 1.0 MiB") {
		t.Fatalf("Save error %v; want it to say %q", err, want)
	}
	if list, _ := c.List(ctx); len(list) != 0 {
		t.Errorf("the cache has %d entries", len(list))
	}
	if left, _ := filepath.Glob(filepath.Join(c.Dir, ".tmp-*")); len(left) > 0 {
		t.Errorf("left behind %v", left)
	}
}

func TestConcurrentBuildsShareTheCache(t *testing.T) {
	c := cache(t)
	src := tree(t, 50<<10)
	want := hash(t, src)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, err := c.Save(ctx, key(), "sha256:r", "", src)
				errs <- err
				return
			}
			dst := filepath.Join(t.TempDir(), "rootfs")
			e, err := c.Restore(ctx, key(), "sha256:r", dst)
			if err == nil && e != nil && hash(t, dst) != want {
				err = errors.New("a restored tree differs")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	list, _ := c.List(ctx)
	if len(list) != 1 || list[0].Problem != "" {
		t.Errorf("entries %+v; want one good entry", list)
	}
}

func TestPrune(t *testing.T) {
	c := cache(t)
	for _, p := range []string{"a", "b", "c"} {
		if _, err := c.Save(ctx, key(p), "sha256:r", "", tree(t, 100<<10)); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	must(t, os.Chtimes(filepath.Join(c.Dir, key("a").ID(), "used"), old, old))
	// A build killed while it saved left a temporary directory.
	must(t, os.MkdirAll(filepath.Join(c.Dir, ".tmp-999999999-1/tree"), 0o755))

	removed, err := c.Prune(ctx, checkpoint.PruneOptions{OlderThan: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if got := entryIDs(removed); len(got) != 1 || got[0] != key("a").ID() {
		t.Errorf("--older-than 24h removed %v; want a", got)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, ".tmp-999999999-1")); err == nil {
		t.Error("prune left a dead build's temporary directory")
	}
	list, _ := c.List(ctx)
	removed, err = c.Prune(ctx, checkpoint.PruneOptions{MaxSize: list[0].Size + 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := entryIDs(removed); len(got) != 1 || got[0] != list[1].ID {
		t.Errorf("--max-size removed %v; want the least recently used, %s", got, list[1].ID)
	}
	removed, _ = c.Prune(ctx, checkpoint.PruneOptions{All: true})
	if len(removed) != 1 {
		t.Errorf("--all removed %v", entryIDs(removed))
	}
	if list, _ := c.List(ctx); len(list) != 0 {
		t.Errorf("entries left: %v", entryIDs(list))
	}
}

func TestOpenReadsTheEnvironment(t *testing.T) {
	t.Setenv(checkpoint.DirEnv, "/tmp/ck")
	t.Setenv(checkpoint.MaxSizeEnv, "2G")
	c, err := checkpoint.Open()
	if err != nil || c.Dir != "/tmp/ck" || c.MaxSize != 2<<30 {
		t.Fatalf("Open = %+v, %v", c, err)
	}
	t.Setenv(checkpoint.DirEnv, "")
	t.Setenv("XDG_CACHE_HOME", "/tmp/xdg")
	t.Setenv(checkpoint.MaxSizeEnv, "")
	if c, _ := checkpoint.Open(); c.Dir != "/tmp/xdg/imgbuild/checkpoints" || c.MaxSize != checkpoint.DefaultMaxSize {
		t.Errorf("Open = %+v; want the XDG cache and the default bound", c)
	}
	t.Setenv(checkpoint.MaxSizeEnv, "lots")
	_, err = checkpoint.Open()
	if want := `IMGBUILD_CHECKPOINT_MAX_SIZE="lots": "lots" is not a size: write it like "2G", "1536M" or a number of bytes`; err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
}

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "36h": 36 * time.Hour, "1.5d": 36 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := checkpoint.ParseAge(in); err != nil || got != want {
			t.Errorf("ParseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "soon", "-3d", "0h", "3w"} {
		_, err := checkpoint.ParseAge(bad)
		if want := `is not an age: write it like "30d", "36h" or "90m"`; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseAge(%q) error %v", bad, err)
		}
	}
}

func TestHuman(t *testing.T) {
	for n, want := range map[int64]string{512: "512 B", 1536: "1.5 KiB", 230 << 20: "230 MiB", 10 << 30: "10 GiB"} {
		if got := checkpoint.Human(n); got != want {
			t.Errorf("Human(%d) = %q, want %q", n, got, want)
		}
	}
}
