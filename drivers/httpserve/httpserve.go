// Package httpserve serves files over HTTP to a machine being installed:
// Packer's http_directory and http_content, from which an installer fetches
// its answers (a preseed, a kickstart) and a guest its build's SSH key. It
// listens on one address, on a port from a range, and reports every request
// so that a hung install shows whether it fetched what it needed.
//
// The directory is served through an os.Root: a symbolic link in it that
// leads out is not followed. The package knows no platform and no Starlark.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imgbuild/imgbuild/engine/panics"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// AuthorizedKeysPath is where a build serves its SSH public key, for a
// guest to install (wget {http_url}/.imgbuild/authorized_keys).
const AuthorizedKeysPath = "/.imgbuild/authorized_keys"

// Options say what to serve and where.
type Options struct {
	// IP is the address to listen on ("127.0.0.1").
	IP string
	// PortMin and PortMax bound the port (inclusive); 0 and 0 take any
	// free port. Within the range, ports are tried from a random one on,
	// so that parallel builds rarely collide.
	PortMin, PortMax int
	// Directory, if set, is served at /.
	Directory string
	// Content maps paths ("/preseed.cfg") to what is served there; it
	// goes before Directory's files.
	Content map[string]string
	// Log, if set, is told of every request and its status.
	Log func(format string, args ...any)
}

// CheckContent checks a builder's http_content keyword: every path names
// a file. The error names the keyword.
func CheckContent(content map[string]string) error {
	for p := range content {
		if strings.TrimLeft(p, "/") == "" || strings.Contains(p, "..") {
			return schema.Errorf("http_content", "%q is not a file path (\"/preseed.cfg\")", p)
		}
	}
	return nil
}

// Server is a running server.
type Server struct {
	// IP and Port are where it listens.
	IP   string
	Port int

	srv  *http.Server
	root *os.Root
	done chan struct{}
}

// URL is http://ip:port.
func (s *Server) URL() string { return "http://" + net.JoinHostPort(s.IP, strconv.Itoa(s.Port)) }

// Start listens and serves until Stop. ctx carries the build's panic
// handler to the serving goroutine; it does not stop the server.
func Start(ctx context.Context, opts Options) (*Server, error) {
	s := &Server{IP: opts.IP, done: make(chan struct{})}
	if opts.Directory != "" {
		fi, err := os.Stat(opts.Directory)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("http_directory %s does not exist", opts.Directory)
		case err != nil:
			return nil, fmt.Errorf("http_directory: %w", err)
		case !fi.IsDir():
			return nil, fmt.Errorf("http_directory %s is a file, not a directory", opts.Directory)
		}
		root, err := os.OpenRoot(opts.Directory)
		if err != nil {
			return nil, fmt.Errorf("http_directory: %w", err)
		}
		s.root = root
	}
	ln, err := listen(opts.IP, opts.PortMin, opts.PortMax)
	if err != nil {
		if s.root != nil {
			s.root.Close()
		}
		return nil, err
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	s.srv = &http.Server{Handler: s.handler(opts), ReadHeaderTimeout: 30 * time.Second}
	panics.Go(ctx, func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	})
	return s, nil
}

// listen listens on ip and a port of [min, max], trying each once from a
// random one on; 0 and 0 take any free port.
func listen(ip string, min, max int) (net.Listener, error) {
	if min == 0 && max == 0 {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("starting the HTTP server on %s: %w", ip, err)
		}
		return ln, nil
	}
	if max < min {
		max = min
	}
	n := max - min + 1
	first := rand.IntN(n)
	var last error
	for i := range n {
		port := min + (first+i)%n
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err == nil {
			return ln, nil
		}
		last = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if n == 1 {
		return nil, fmt.Errorf("starting the HTTP server on %s: %w", net.JoinHostPort(ip, strconv.Itoa(min)), last)
	}
	return nil, fmt.Errorf("starting the HTTP server on %s: no port from %d to %d is free (last: %v)", ip, min, max, last)
}

func (s *Server) handler(opts Options) http.Handler {
	files := map[string]string{}
	for p, c := range opts.Content {
		files[path.Clean("/"+p)] = c
	}
	var fileServer http.Handler
	if s.root != nil {
		fileServer = http.FileServerFS(s.root.FS())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		p := path.Clean("/" + r.URL.Path)
		content, isContent := files[p]
		switch {
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			http.Error(rec, "only GET", http.StatusMethodNotAllowed)
		case isContent:
			http.ServeContent(rec, r, path.Base(p), time.Time{}, strings.NewReader(content))
		case fileServer != nil:
			fileServer.ServeHTTP(rec, r)
		default:
			http.NotFound(rec, r)
		}
		if opts.Log != nil {
			opts.Log("http: %s %s from %s: %d", r.Method, r.URL.Path, r.RemoteAddr, rec.status)
		}
	})
}

// Stop shuts the server down, waiting for requests in flight until ctx
// ends.
func (s *Server) Stop(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	<-s.done
	if s.root != nil {
		s.root.Close()
	}
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

// Running is the server a build's step started, for the step to embed:
// its Cleanup stops the server and its Leftovers name it while it runs.
type Running struct {
	Server *Server // nil until started
}

// Cleanup stops the server, if one runs; it implements step.Cleaner.
func (r *Running) Cleanup(ctx context.Context, failed bool) error {
	if r.Server == nil {
		return nil
	}
	err := r.Server.Stop(ctx)
	r.Server = nil
	return err
}

// Leftovers names the server while it runs; it implements step.Leaver.
func (r *Running) Leftovers() []string {
	if r.Server == nil {
		return nil
	}
	return []string{"the HTTP server at " + r.Server.URL()}
}
