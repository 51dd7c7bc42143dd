package iso

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine/retry"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

func TestMain(m *testing.M) {
	backoff = retry.Backoff{First: time.Millisecond}
	os.Exit(m.Run())
}

// image is the content of the test "ISO": a few MiB, so that a download
// takes more than one read.
var image = bytes.Repeat([]byte("imgbuild test image\n"), 200_000)

func sha256Of(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// server serves image at /debian.iso (with Range support, ETag and
// Last-Modified, as a mirror does) and counts what it was asked.
type server struct {
	*httptest.Server
	gets, ranges, heads atomic.Int32
	// cutAfter, when set, drops the connection of the next full download
	// after that many bytes.
	cutAfter atomic.Int64
	mu       sync.Mutex
	rangesAs []string
}

func serve(t *testing.T) *server {
	s := &server{}
	modified := time.Date(2025, 5, 20, 0, 0, 0, 0, time.UTC)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/debian.iso":
		case "/SHA256SUMS":
			fmt.Fprintf(w, "%s  debian.iso\n%s  other.iso\n", sha256Of(image), strings.Repeat("0", 64))
			return
		default:
			http.NotFound(w, r)
			return
		}
		if r.Method == http.MethodHead {
			s.heads.Add(1)
		} else if rg := r.Header.Get("Range"); rg != "" {
			s.ranges.Add(1)
			s.mu.Lock()
			s.rangesAs = append(s.rangesAs, rg+" if-range="+r.Header.Get("If-Range"))
			s.mu.Unlock()
		} else {
			s.gets.Add(1)
			if n := s.cutAfter.Swap(0); n > 0 {
				w.Header().Set("Content-Length", strconv.Itoa(len(image)))
				w.Header().Set("ETag", `"v1"`)
				w.Write(image[:n])
				w.(http.Flusher).Flush()
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
				return
			}
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "debian.iso", modified, bytes.NewReader(image))
	}))
	t.Cleanup(s.Close)
	return s
}

func request(t *testing.T, urls ...string) (Request, *[]string) {
	var said []string
	var mu sync.Mutex
	note := func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		said = append(said, fmt.Sprintf(f, a...))
	}
	return Request{URLs: urls, Checksum: "sha256:" + sha256Of(image), Workspace: t.TempDir(), CacheDir: t.TempDir(), Say: note, Warn: note}, &said
}

func TestADownloadIsCheckedCachedAndNotDownloadedAgain(t *testing.T) {
	s := serve(t)
	req, _ := request(t, s.URL+"/debian.iso")
	var progress atomic.Int64
	req.Progress = func(what string, done, total int64) {
		if what == "download ISO" {
			progress.Store(done)
		}
	}
	res, err := Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Downloaded || res.Checksum != "sha256:"+sha256Of(image) || filepath.Dir(res.Path) != req.CacheDir {
		t.Errorf("result %+v", res)
	}
	if b, _ := os.ReadFile(res.Path); !bytes.Equal(b, image) {
		t.Error("the cached file is not the image")
	}
	if progress.Load() != int64(len(image)) {
		t.Errorf("progress ended at %d of %d", progress.Load(), len(image))
	}
	again, err := Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Downloaded || again.Path != res.Path || s.gets.Load() != 1 {
		t.Errorf("second fetch: %+v after %d downloads", again, s.gets.Load())
	}
	// The same image from another mirror is the same cache entry.
	req.URLs = []string{strings.Replace(s.URL, "127.0.0.1", "localhost", 1) + "/debian.iso"}
	if other, err := Fetch(context.Background(), req); err != nil || other.Downloaded {
		t.Errorf("from another mirror: %+v, %v", other, err)
	}
}

func TestAnInterruptedDownloadResumesWithARangeRequest(t *testing.T) {
	s := serve(t)
	req, said := request(t, s.URL+"/debian.iso")
	s.cutAfter.Store(1 << 20)
	res, err := Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(res.Path); !bytes.Equal(b, image) {
		t.Fatal("the resumed file is not the image")
	}
	if s.gets.Load() != 1 || s.ranges.Load() != 1 || s.rangesAs[0] != `bytes=1048576- if-range="v1"` {
		t.Errorf("%d full downloads and ranges %v; want one of each, the range from 1 MiB with If-Range", s.gets.Load(), s.rangesAs)
	}
	if !strings.Contains(strings.Join(*said, "\n"), "resuming the download of debian.iso at 1048576 of 4000000 bytes") {
		t.Errorf("said:\n%s", strings.Join(*said, "\n"))
	}
}

func TestAPartialDownloadLeftByAnEarlierRunIsResumed(t *testing.T) {
	s := serve(t)
	req, _ := request(t, s.URL+"/debian.iso")
	old := attempts
	attempts = 1
	s.cutAfter.Store(3 << 20)
	_, err := Fetch(context.Background(), req)
	attempts = old
	if err == nil || !strings.Contains(err.Error(), "the download of "+s.URL+"/debian.iso stopped at 3145728 of 4000000 bytes") {
		t.Fatalf("first run: %v", err)
	}
	res, err := Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(res.Path); !bytes.Equal(b, image) {
		t.Fatal("the resumed file is not the image")
	}
	if s.gets.Load() != 1 || s.ranges.Load() != 1 {
		t.Errorf("%d full downloads, %d ranges; want 1 and 1", s.gets.Load(), s.ranges.Load())
	}
	left, _ := filepath.Glob(filepath.Join(req.CacheDir, "*.part*"))
	if len(left) > 0 {
		t.Errorf("left in the cache: %v", left)
	}
}

func TestAChecksumMismatchShowsBothSumsAndLeavesNothingInTheCache(t *testing.T) {
	s := serve(t)
	req, _ := request(t, s.URL+"/debian.iso")
	wrong := strings.Repeat("ab", 32)
	req.Checksum = "sha256:" + wrong
	_, err := Fetch(context.Background(), req)
	want := fmt.Sprintf("iso_url %s/debian.iso has sha256 %s, not %s as iso_checksum says: the download is damaged or the checksum is for another file (it was removed from the cache; the next run downloads it again)", s.URL, sha256Of(image), wrong)
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	if left, _ := filepath.Glob(filepath.Join(req.CacheDir, "sha256-*")); len(left) != 1 || !strings.HasSuffix(left[0], ".lock") {
		t.Errorf("cache holds %v; want only the entry's lock file", left)
	}
	// The same for a file in the workspace, with sha512.
	testkit.WriteFile(t, filepath.Join(req.Workspace, "local.iso"), "local\n")
	req.URLs, req.Checksum = []string{"local.iso"}, "sha512:"+strings.Repeat("cd", 64)
	_, err = Fetch(context.Background(), req)
	want = fmt.Sprintf("iso_url local.iso has sha512 %x, not %s as iso_checksum says: the download is damaged or the checksum is for another file", sha512.Sum512([]byte("local\n")), strings.Repeat("cd", 64))
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}

func TestAURLThatCannotBeReachedIsNamed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/debian.iso"
	l.Close()
	req, said := request(t, dead)
	_, err = Fetch(context.Background(), req)
	want := "iso_url " + dead + " cannot be reached: dial tcp " + l.Addr().String() + ": connect: connection refused"
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	if n := strings.Count(strings.Join(*said, "\n"), "trying again"); n != attempts-1 {
		t.Errorf("%d retries said, want %d:\n%s", n, attempts-1, strings.Join(*said, "\n"))
	}
	// A server that answers 404 is not asked again.
	s := serve(t)
	req, _ = request(t, s.URL+"/missing.iso")
	_, err = Fetch(context.Background(), req)
	if err == nil || err.Error() != "iso_url "+s.URL+"/missing.iso cannot be downloaded: the server answered 404 Not Found" {
		t.Errorf("got %v", err)
	}
}

func TestISOURLsAreTriedInOrderAndEachFailureIsNamed(t *testing.T) {
	s := serve(t)
	req, _ := request(t, s.URL+"/missing.iso", s.URL+"/debian.iso")
	res, err := Fetch(context.Background(), req)
	if err != nil || res.URL != s.URL+"/debian.iso" {
		t.Fatalf("%+v, %v", res, err)
	}
	req.URLs = []string{s.URL + "/missing.iso", "missing-too.iso"}
	_, err = Fetch(context.Background(), req)
	want := "none of iso_urls could be used:\n  iso_url " + s.URL + "/missing.iso cannot be downloaded: the server answered 404 Not Found\n  iso_url missing-too.iso does not exist (looked for " + filepath.Join(req.Workspace, "missing-too.iso") + ")"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestAChecksumListIsFetchedAndTheISOsEntryUsed(t *testing.T) {
	s := serve(t)
	req, _ := request(t, s.URL+"/debian.iso")
	req.Checksum = "file:" + s.URL + "/SHA256SUMS"
	res, err := Fetch(context.Background(), req)
	if err != nil || res.Checksum != "sha256:"+sha256Of(image) {
		t.Fatalf("%+v, %v", res, err)
	}
	// A list in the workspace, without the ISO's name.
	testkit.WriteFile(t, filepath.Join(req.Workspace, "sums/SHA256SUMS"), strings.Repeat("0", 64)+"  debian-11.iso\n"+strings.Repeat("1", 64)+"  ubuntu.iso\n")
	req.Checksum = "file:sums/SHA256SUMS"
	_, err = Fetch(context.Background(), req)
	want := "iso_checksum file:sums/SHA256SUMS lists no checksum for debian.iso (it lists debian-11.iso, ubuntu.iso)"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	req.Checksum = "file:sums/MISSING"
	if _, err = Fetch(context.Background(), req); err == nil || !strings.HasPrefix(err.Error(), "iso_checksum file:sums/MISSING cannot be read: ") {
		t.Errorf("got %v", err)
	}
}

func TestNoneWarnsAndRevalidatesTheCachedDownload(t *testing.T) {
	s := serve(t)
	req, said := request(t, s.URL+"/debian.iso")
	req.Checksum = "none"
	if _, err := Fetch(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	res, err := Fetch(context.Background(), req)
	if err != nil || res.Downloaded || res.Checksum != "" {
		t.Fatalf("%+v, %v", res, err)
	}
	if s.gets.Load() != 1 || s.heads.Load() != 1 {
		t.Errorf("%d downloads and %d HEADs; want the second run to ask whether it changed", s.gets.Load(), s.heads.Load())
	}
	if !strings.Contains(strings.Join(*said, "\n"), `iso_checksum = "none": `+s.URL+"/debian.iso is not verified") {
		t.Errorf("no warning:\n%s", strings.Join(*said, "\n"))
	}
}

func TestTwoBuildsFetchingTheSameISODownloadItOnce(t *testing.T) {
	s := serve(t)
	req, _ := request(t, s.URL+"/debian.iso")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Fetch(context.Background(), req)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || s.gets.Load() != 1 {
		t.Errorf("errors %v, %d downloads", errs, s.gets.Load())
	}
}
