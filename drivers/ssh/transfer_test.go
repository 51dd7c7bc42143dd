package ssh_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine"
)

// randomReader is a deterministic stream of pseudo-random bytes.
func randomReader(seed uint64, n int64) io.Reader {
	return io.LimitReader(&chachaReader{r: rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})}, n)
}

type chachaReader struct{ r *rand.ChaCha8 }

func (c *chachaReader) Read(b []byte) (int, error) { return c.r.Read(b) }

func sha256Of(t *testing.T, r io.Reader) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// progressLog records Progress calls.
type progressLog struct {
	mu    sync.Mutex
	calls [][2]int64
}

func (p *progressLog) report(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, [2]int64{done, total})
}

func (p *progressLog) check(t *testing.T, total int64) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.calls) == 0 {
		t.Fatal("no progress reported")
	}
	last := p.calls[len(p.calls)-1]
	if last != [2]int64{total, total} {
		t.Errorf("last progress %d/%d; want %d/%d", last[0], last[1], total, total)
	}
	for i := 1; i < len(p.calls); i++ {
		if p.calls[i][0] < p.calls[i-1][0] {
			t.Errorf("progress went back: %v", p.calls)
			break
		}
	}
}

func TestUploadAndDownloadOfALargeFileKeepContentAndMode(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	const size = 48<<20 + 12345 // not a multiple of any packet size
	want := sha256Of(t, randomReader(1, size))
	dst := filepath.Join(t.TempDir(), "big.bin")

	var up progressLog
	err := c.Upload(context.Background(), dst, randomReader(1, size), engine.Transfer{Size: size, Mode: 0o750, Progress: up.report})
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	up.check(t, size)
	got := output(t, c, "sha256sum "+dst+" | cut -d' ' -f1; stat -c %a "+dst)
	if got != want+"\n750" {
		t.Fatalf("on the machine: %q; want hash %s and mode 750", got, want)
	}

	var down progressLog
	h := sha256.New()
	if err := c.Download(context.Background(), dst, h, engine.Transfer{Progress: down.report}); err != nil {
		t.Fatalf("Download: %v", err)
	}
	down.check(t, size)
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Fatalf("downloaded hash %s; want %s", got, want)
	}
}

func TestUploadOfUnknownSizeAndDefaultMode(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	dst := filepath.Join(t.TempDir(), "stream.bin")
	// A reader that hides its size, larger than the small-file buffer.
	const size = 3<<20 + 7
	want := sha256Of(t, randomReader(2, size))
	if err := c.Upload(context.Background(), dst, io.MultiReader(randomReader(2, size)), engine.Transfer{}); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if got := output(t, c, "sha256sum "+dst+" | cut -d' ' -f1; stat -c %a "+dst); got != want+"\n644" {
		t.Fatalf("on the machine: %q; want hash %s and mode 644", got, want)
	}
	// And an empty file.
	empty := filepath.Join(t.TempDir(), "empty")
	if err := c.Upload(context.Background(), empty, strings.NewReader(""), engine.Transfer{Mode: 0o600}); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if got := output(t, c, "stat -c '%s %a' "+empty); got != "0 600" {
		t.Fatalf("empty file: %q; want \"0 600\"", got)
	}
}

// failingReader returns n bytes, then err.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestAFailedUploadRemovesTheRemoteFile(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	dir := t.TempDir()
	for _, size := range []int64{1000, 5 << 20} {
		dst := filepath.Join(dir, fmt.Sprintf("partial-%d", size))
		broken := errors.New("disk on fire")
		err := c.Upload(context.Background(), dst, &failingReader{r: randomReader(3, size), err: broken}, engine.Transfer{Size: 2 * size})
		if !errors.Is(err, broken) {
			t.Fatalf("Upload = %v; want the reader's error", err)
		}
		mustContain(t, err.Error(), "upload to "+dst, "disk on fire")
		if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after a failed upload of %d bytes %s is still there (%v)", size, dst, err)
		}
	}
}

func TestACancelledUploadStopsAndRemovesTheRemoteFile(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	dst := filepath.Join(t.TempDir(), "cancelled")
	ctx, cancel := context.WithCancel(context.Background())
	err := c.Upload(ctx, dst, randomReader(4, 1<<30), engine.Transfer{Size: 1 << 30, Progress: func(done, total int64) {
		if done > 8<<20 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Upload = %v; want context.Canceled", err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after a cancelled upload %s is still there (%v)", dst, err)
	}
}

func TestUploadIntoAMissingDirectoryNamesThePath(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	err := c.Upload(context.Background(), "/nonexistent-imgbuild/dir/file", strings.NewReader("x"), engine.Transfer{})
	if err == nil {
		t.Fatal("Upload succeeded")
	}
	mustContain(t, err.Error(), "upload to /nonexistent-imgbuild/dir/file: file does not exist (does its directory exist?)")
	if errors.Is(err, engine.ErrDisconnected) {
		t.Errorf("a missing directory is not a lost connection: %v", err)
	}
}

func TestDownloadOfAMissingFileNamesThePath(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	err := c.Download(context.Background(), "/nonexistent-imgbuild", io.Discard, engine.Transfer{})
	if err == nil {
		t.Fatal("Download succeeded")
	}
	mustContain(t, err.Error(), "download of /nonexistent-imgbuild: file does not exist")
}

// makeTree writes a tree with nested directories, assorted modes, an empty
// file, odd names and symlinks (relative, absolute, dangling, to a dir).
func makeTree(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	files := []struct {
		path string
		mode fs.FileMode
		size int64
	}{
		{"a.txt", 0o644, 100},
		{"run.sh", 0o755, 3000},
		{"secret", 0o600, 70},
		{"empty", 0o640, 0},
		{"name with spaces & 'quotes'", 0o644, 10},
		{"ünïcödé.txt", 0o644, 10},
		{"sub/b.bin", 0o644, 2<<20 + 3},
		{"sub/deeper/c", 0o700, 5000},
		{"locked/d", 0o444, 10},
		{"setuid-tool", 0o755 | fs.ModeSetuid, 20},
	}
	for i, f := range files {
		p := filepath.Join(root, f.path)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		b, _ := io.ReadAll(randomReader(uint64(10+i), f.size))
		must(os.WriteFile(p, b, 0o600))
		must(os.Chmod(p, f.mode))
	}
	must(os.Mkdir(filepath.Join(root, "emptydir"), 0o750))
	must(os.Chmod(filepath.Join(root, "locked"), 0o555)) // read-only dir
	must(os.Symlink("a.txt", filepath.Join(root, "link-rel")))
	must(os.Symlink("../a.txt", filepath.Join(root, "sub", "link-up")))
	must(os.Symlink("/etc/hostname", filepath.Join(root, "link-abs")))
	must(os.Symlink("nowhere", filepath.Join(root, "link-dangling")))
	must(os.Symlink("sub", filepath.Join(root, "link-dir")))
}

// describeTree lists a local tree as "path type mode size-or-target hash".
func describeTree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			lines = append(lines, fmt.Sprintf("%s l %s", rel, target))
		case d.IsDir():
			lines = append(lines, fmt.Sprintf("%s d %o", rel, unixMode(info.Mode())))
		default:
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			lines = append(lines, fmt.Sprintf("%s f %o %s", rel, unixMode(info.Mode()), sha256Of(t, f)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// unixMode is m as chmod writes it (4755).
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// remoteDescription is describeTree's listing, made by the machine's own
// tools.
const remoteDescription = `cd %s && find . | LC_ALL=C sort | while IFS= read -r p; do
  r=${p#./}; [ "$p" = . ] && r=.
  if [ -L "$p" ]; then printf '%%s l %%s\n' "$r" "$(readlink "$p")"
  elif [ -d "$p" ]; then printf '%%s d %%s\n' "$r" "$(stat -c %%a "$p")"
  else printf '%%s f %%s %%s\n' "$r" "$(stat -c %%a "$p")" "$(sha256sum < "$p" | cut -d' ' -f1)"
  fi
done | LC_ALL=C sort`

func TestUploadDirAndDownloadDirKeepContentsModesAndSymlinks(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.Mkdir(src, 0o755))
	makeTree(t, src)
	want := describeTree(t, src)

	dst := filepath.Join(t.TempDir(), "on-the-machine", "tree")
	var up progressLog
	if err := c.UploadDir(context.Background(), dst, src, engine.Transfer{Progress: up.report}); err != nil {
		t.Fatalf("UploadDir: %v", err)
	}
	up.check(t, 100+3000+70+0+10+10+(2<<20+3)+5000+10+20)
	got := output(t, c, fmt.Sprintf(remoteDescription, dst))
	if got != sortLines(want) {
		t.Fatalf("on the machine:\n%s\nwant:\n%s", got, sortLines(want))
	}

	back := filepath.Join(t.TempDir(), "back")
	var down progressLog
	if err := c.DownloadDir(context.Background(), dst, back, engine.Transfer{Progress: down.report}); err != nil {
		t.Fatalf("DownloadDir: %v", err)
	}
	down.check(t, 100+3000+70+0+10+10+(2<<20+3)+5000+10+20)
	if got := describeTree(t, back); got != want {
		t.Fatalf("downloaded:\n%s\nwant:\n%s", got, want)
	}
	// Uploading again over the same tree works (files overwritten, links
	// replaced).
	if err := c.UploadDir(context.Background(), dst, src, engine.Transfer{}); err != nil {
		t.Fatalf("UploadDir again: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sortLines sorts lines the way LC_ALL=C sort does.
func sortLines(s string) string {
	lines := strings.Split(s, "\n")
	sort.Slice(lines, func(i, j int) bool { return bytes.Compare([]byte(lines[i]), []byte(lines[j])) < 0 })
	return strings.Join(lines, "\n")
}

func TestUploadDirOfAMissingDirectorySaysSo(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	err := c.UploadDir(context.Background(), "/tmp/x", filepath.Join(t.TempDir(), "nope"), engine.Transfer{})
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("UploadDir = %v; want not-exist", err)
	}
}

func TestUploadDirIntoAnExistingDirectoryLeavesItsModeAlone(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	must(t, os.Chmod(src, 0o700))
	shared := filepath.Join(t.TempDir(), "shared")
	output(t, c, "mkdir -m 1777 "+shared)
	if err := c.UploadDir(context.Background(), shared, src, engine.Transfer{}); err != nil {
		t.Fatalf("UploadDir: %v", err)
	}
	if got := output(t, c, "stat -c %a "+shared+"; cat "+shared+"/f"); got != "1777\nx" {
		t.Fatalf("got %q; want the directory still 1777 and the file in it", got)
	}
}
