// Package iso gets the ISO image a build installs from, as Packer's
// iso_url, iso_urls and iso_checksum say: a file in the workspace, or an
// http(s) download kept in a cache that every run on this machine shares
// (so that an ISO is downloaded once) and that resumes a partial download
// where the last attempt stopped (HTTP Range, If-Range). The image is
// checked against iso_checksum before anything boots it; a download that
// does not match is removed from the cache, so that the next run fetches
// it again.
//
// The cache is $IMGBUILD_CACHE_DIR/iso, else the user's cache directory
// (~/.cache/imgbuild/iso). It lives outside the workspace: it is imgbuild's
// own, not a user's input. Two builds fetching the same ISO at once take
// turns through a lock file; the second finds the first's download.
//
// The package knows no platform and no Starlark.
package iso

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/engine/workspace"
)

// Request says which image to get and how to check it.
type Request struct {
	// URLs are tried in order (iso_url alone, or iso_urls): workspace
	// paths (relative to Workspace, or absolute inside it), file:// URLs,
	// or http(s) URLs.
	URLs []string
	// Checksum is iso_checksum as written.
	Checksum string
	// Workspace is the description's workspace: relative paths, and
	// relative file: checksum lists, are read from it.
	Workspace string
	// CacheDir holds downloads; "" is CacheDir().
	CacheDir string
	// Client makes the HTTP requests; nil is a client with timeouts for
	// connecting and for each response's headers.
	Client *http.Client
	// Progress, Say and Warn, if set, hear how it goes.
	Progress func(what string, done, total int64)
	Say      func(format string, args ...any)
	Warn     func(format string, args ...any)
}

// Result is the image, checked.
type Result struct {
	// Path is the local file to boot: in the workspace, or in the cache.
	Path string
	// URL is which of the request's URLs it came from.
	URL string
	// Checksum is what it was checked against ("sha256:<hex>"), "" for
	// none.
	Checksum string
	// Downloaded is true when this run downloaded (some of) it.
	Downloaded bool
}

// CacheDir is where downloaded ISOs are kept: $IMGBUILD_CACHE_DIR/iso,
// else the user's cache directory's imgbuild/iso.
func CacheDir() (string, error) {
	if d := os.Getenv("IMGBUILD_CACHE_DIR"); d != "" {
		return filepath.Join(d, "iso"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding a cache directory for downloads: %w (set IMGBUILD_CACHE_DIR)", err)
	}
	return filepath.Join(d, "imgbuild", "iso"), nil
}

// MismatchError is a file whose checksum is not the one expected.
type MismatchError struct {
	URL       string
	Algo      string
	Got, Want string
	Removed   bool // the download was removed from the cache
}

func (e *MismatchError) Error() string {
	msg := fmt.Sprintf("%s has %s %s, not %s as iso_checksum says: the download is damaged or the checksum is for another file", e.URL, e.Algo, e.Got, e.Want)
	if e.Removed {
		msg += " (it was removed from the cache; the next run downloads it again)"
	}
	return msg
}

// Fetch gets the first of the request's URLs that it can and that matches
// the checksum, and returns where it is. Each URL that fails is named in
// the error, with why.
func Fetch(ctx context.Context, req Request) (*Result, error) {
	if len(req.URLs) == 0 {
		return nil, errors.New("no ISO to fetch: set iso_url or iso_urls")
	}
	sum, err := ParseChecksum(req.Checksum)
	if err != nil {
		return nil, fmt.Errorf("iso_checksum %v", err)
	}
	if req.CacheDir == "" {
		if req.CacheDir, err = CacheDir(); err != nil {
			return nil, err
		}
	}
	if req.Client == nil {
		req.Client = defaultClient()
	}
	var list []Entry
	if sum.List != "" {
		if list, err = req.readList(ctx, sum.List); err != nil {
			return nil, err
		}
	}
	var failures []string
	for _, u := range req.URLs {
		want := *sum
		if sum.List != "" {
			e, ok := Find(list, fileName(u))
			if !ok {
				failures = append(failures, fmt.Sprintf("iso_checksum file:%s lists no checksum for %s (it lists %s)", redact(sum.List), fileName(u), names(list)))
				continue
			}
			want = Checksum{Algo: e.Algo, Sum: e.Sum}
		}
		res, err := req.fetchOne(ctx, u, &want)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		failures = append(failures, err.Error())
	}
	if len(failures) == 1 {
		return nil, errors.New(failures[0])
	}
	return nil, fmt.Errorf("none of iso_urls could be used:\n  %s", strings.Join(failures, "\n  "))
}

// fetchOne gets one URL and checks it.
func (r *Request) fetchOne(ctx context.Context, raw string, want *Checksum) (*Result, error) {
	u, err := url.Parse(raw)
	isURL := err == nil && len(u.Scheme) > 1
	if isURL && u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file" {
		return nil, fmt.Errorf("iso_url %s: the scheme must be http, https or file, or write a path", redact(raw))
	}
	if !isURL || u.Scheme == "file" {
		p := raw
		if isURL {
			p = u.Path
		}
		return r.local(ctx, raw, p, want)
	}
	return r.download(ctx, raw, want)
}

// local checks an image that is a file in the workspace.
func (r *Request) local(ctx context.Context, raw, p string, want *Checksum) (*Result, error) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(r.Workspace, p)
	}
	if r.Workspace != "" {
		rel, err := workspace.Resolve(r.Workspace, p)
		if err != nil {
			return nil, fmt.Errorf("iso_url %s: %w", raw, err)
		}
		p = filepath.Join(r.Workspace, rel)
	}
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("iso_url %s does not exist (looked for %s)", raw, p)
	case err != nil:
		return nil, fmt.Errorf("iso_url %s: %w", raw, err)
	case fi.IsDir():
		return nil, fmt.Errorf("iso_url %s is a directory, not an ISO image", raw)
	}
	if err := r.verify(ctx, raw, p, want, false); err != nil {
		return nil, err
	}
	return &Result{Path: p, URL: raw, Checksum: checksumField(want)}, nil
}

// verify checks the file at p against want (warning once for none).
func (r *Request) verify(ctx context.Context, raw, p string, want *Checksum, cached bool) error {
	if want.None() {
		if r.Warn != nil {
			r.Warn("iso_checksum = \"none\": %s is not verified", redact(raw))
		}
		return nil
	}
	start := time.Now()
	got, err := SumFile(ctx, p, want.Algo, func(done, total int64) {
		if r.Progress != nil {
			r.Progress("verify ISO", done, total)
		}
	})
	if err != nil {
		return fmt.Errorf("iso_url %s: reading %s: %w", redact(raw), p, err)
	}
	if got != want.Sum {
		e := &MismatchError{URL: "iso_url " + redact(raw), Algo: want.Algo, Got: got, Want: want.Sum}
		if cached {
			e.Removed = os.Remove(p) == nil
			os.Remove(p + ".json")
		}
		return e
	}
	if r.Say != nil {
		r.Say("%s matches iso_checksum (%s, checked in %s)", filepath.Base(p), want.Algo, time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

func checksumField(c *Checksum) string {
	if c.None() {
		return ""
	}
	return c.Algo + ":" + c.Sum
}

// readList reads a file: checksum list: a URL, or a path in the
// workspace.
func (r *Request) readList(ctx context.Context, list string) ([]Entry, error) {
	var body io.ReadCloser
	if u, err := url.Parse(list); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, list, nil)
		if err != nil {
			return nil, fmt.Errorf("iso_checksum file:%s: %w", redact(list), err)
		}
		res, err := r.Client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("iso_checksum file:%s cannot be fetched: %v", redact(list), unwrapURLError(err))
		}
		if res.StatusCode != http.StatusOK {
			res.Body.Close()
			return nil, fmt.Errorf("iso_checksum file:%s cannot be fetched: the server answered %s", redact(list), res.Status)
		}
		body = res.Body
	} else {
		p := strings.TrimPrefix(list, "file://")
		f, err := workspace.OpenInput(r.Workspace, p)
		if err != nil {
			return nil, fmt.Errorf("iso_checksum file:%s cannot be read: %v", list, unwrapPathError(err))
		}
		body = f
	}
	defer body.Close()
	entries, err := ParseList(io.LimitReader(body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("iso_checksum file:%s: %w", redact(list), err)
	}
	return entries, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// fileName is the name of the file a URL or path names, for its entry in
// a checksum list.
func fileName(raw string) string {
	if u, err := url.Parse(raw); err == nil && len(u.Scheme) > 1 {
		return path.Base(u.Path)
	}
	return filepath.Base(raw)
}

// redact hides a URL's password.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
