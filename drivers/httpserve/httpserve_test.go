package httpserve

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/imgbuild/imgbuild/engine/testkit"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestServesContentBeforeTheDirectoryAndLogsEveryRequest(t *testing.T) {
	dir := testkit.Workspace(t, map[string]string{"preseed.cfg": "from the directory\n", "sub/ks.cfg": "kickstart\n"})
	outside := testkit.Workspace(t, map[string]string{"secret": "not served\n"})
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log []string
	s, err := Start(context.Background(), Options{
		IP: "127.0.0.1", Directory: dir,
		Content: map[string]string{"preseed.cfg": "from content\n", AuthorizedKeysPath: "ssh-ed25519 AAAA test\n"},
		Log: func(f string, a ...any) {
			mu.Lock()
			defer mu.Unlock()
			log = append(log, strings.SplitN(f, " from", 2)[0])
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/preseed.cfg", 200, "from content\n"},
		{"/sub/ks.cfg", 200, "kickstart\n"},
		{AuthorizedKeysPath, 200, "ssh-ed25519 AAAA test\n"},
		{"/missing", 404, "404 page not found\n"},
	} {
		status, body := get(t, s.URL()+tc.path)
		if status != tc.status || body != tc.body {
			t.Errorf("GET %s: %d %q, want %d %q", tc.path, status, body, tc.status, tc.body)
		}
	}
	// A link out of the directory is not followed.
	if status, body := get(t, s.URL()+"/link"); status == 200 || strings.Contains(body, "not served") {
		t.Errorf("GET /link (a link out of the directory): %d %q", status, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(log) != 5 || log[0] != "http: %s %s" {
		t.Errorf("log: %v", log)
	}
}

func TestTakesAPortFromTheRangeAndSaysWhenNoneIsFree(t *testing.T) {
	// Hold two neighbouring ports, then ask for exactly those.
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	p := l1.Addr().(*net.TCPAddr).Port
	l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
	if err != nil {
		t.Skipf("port %d is taken: %v", p+1, err)
	}
	l2.Close()
	s, err := Start(context.Background(), Options{IP: "127.0.0.1", PortMin: p, PortMax: p + 1})
	if err != nil {
		t.Fatal(err)
	}
	if s.Port != p+1 {
		t.Errorf("listening on %d, want the free one of %d-%d", s.Port, p, p+1)
	}
	_, err = Start(context.Background(), Options{IP: "127.0.0.1", PortMin: p, PortMax: p + 1})
	s.Stop(context.Background())
	want := "starting the HTTP server on 127.0.0.1: no port from " + strconv.Itoa(p) + " to " + strconv.Itoa(p+1) + " is free"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v\nwant %s...", err, want)
	}
}

func TestADirectoryThatDoesNotExistIsNamed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "http")
	_, err := Start(context.Background(), Options{IP: "127.0.0.1", Directory: dir})
	if err == nil || err.Error() != "http_directory "+dir+" does not exist" {
		t.Errorf("got %v", err)
	}
}
