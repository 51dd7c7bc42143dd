package vsphere

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
)

// httpServer serves http_content and http_directory to the installer in
// the VM (preseed, kickstart), and the build's authorized key at
// /.imgbuild/authorized_keys.
type httpServer struct {
	srv  *http.Server
	ln   net.Listener
	ip   string
	port int
	done chan struct{}
}

// url is http://ip:port.
func (h *httpServer) url() string {
	return "http://" + net.JoinHostPort(h.ip, strconv.Itoa(h.port))
}

// localIPToward returns this machine's address on the way to host: the
// address a VM on host's networks most likely reaches us at.
func localIPToward(host string) (string, error) {
	c, err := net.Dial("udp", net.JoinHostPort(host, "443"))
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// startHTTP listens on ip:port and serves content (path → text), then the
// files of dir. Every request is reported, so that a hung install shows
// whether it fetched its answers.
func startHTTP(ui *event.UI, ip string, port int, dir string, content map[string]string, authorizedKey string) (*httpServer, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("starting the HTTP server on %s: %w (set http_ip or http_port)", net.JoinHostPort(ip, strconv.Itoa(port)), err)
	}
	files := map[string]string{}
	for p, c := range content {
		files[path.Clean("/"+p)] = c
	}
	files[authorizedKeysHTTPPath] = authorizedKey + "\n"
	var fileServer http.Handler
	if dir != "" {
		fileServer = http.FileServer(http.Dir(dir))
	}
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		p := path.Clean("/" + r.URL.Path)
		switch {
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			http.Error(rec, "only GET", http.StatusMethodNotAllowed)
		case hasFile(files, p):
			http.ServeContent(rec, r, path.Base(p), time.Time{}, strings.NewReader(files[p]))
		case fileServer != nil:
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); errors.Is(err, os.ErrNotExist) {
				http.NotFound(rec, r)
			} else {
				fileServer.ServeHTTP(rec, r)
			}
		default:
			http.NotFound(rec, r)
		}
		ui.Say("http: %s %s from %s: %d", r.Method, r.URL.Path, r.RemoteAddr, rec.status)
	})
	h := &httpServer{ln: ln, ip: ip, port: ln.Addr().(*net.TCPAddr).Port, done: make(chan struct{})}
	h.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		defer close(h.done)
		_ = h.srv.Serve(ln)
	}()
	return h, nil
}

// stop shuts the server down.
func (h *httpServer) stop(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	<-h.done
	return err
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

// WriteHeader implements http.ResponseWriter.
func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func hasFile(files map[string]string, p string) bool {
	_, ok := files[p]
	return ok
}
