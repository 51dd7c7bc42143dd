package iso

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/engine/filelock"
	"github.com/imgbuild/imgbuild/engine/retry"
)

// attempts is how many times one download is tried (each try resumes
// where the last stopped); stallTimeout ends a try that receives nothing
// for that long.
var (
	attempts     = 4
	stallTimeout = 60 * time.Second
	backoff      = retry.Backoff{First: time.Second, Max: 10 * time.Second, Factor: 2}
)

func defaultClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
	}}
}

// validator is what a response said about the file, kept beside a partial
// or complete download: resuming (If-Range) and revalidating
// (If-None-Match, If-Modified-Since) send it back, so that a file changed
// on the server is not stitched onto an old part.
type validator struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	Size         int64  `json:"size,omitempty"`
}

func readValidator(p string) validator {
	var v validator
	if b, err := os.ReadFile(p); err == nil {
		_ = json.Unmarshal(b, &v)
	}
	return v
}

func (v validator) write(p string) error {
	b, _ := json.Marshal(v)
	return os.WriteFile(p, b, 0o644)
}

// ifRange is the If-Range value, "" when the server gave none.
func (v validator) ifRange() string {
	if v.ETag != "" && !strings.HasPrefix(v.ETag, "W/") {
		return v.ETag
	}
	return v.LastModified
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// cacheName is a download's name in the cache: by its checksum when there
// is one (the same image from another mirror is the same file), else by
// its URL; with the URL's file name, for people looking at the cache.
func cacheName(raw string, want *Checksum) string {
	base := unsafeName.ReplaceAllString(fileName(raw), "_")
	if len(base) > 80 {
		base = base[len(base)-80:]
	}
	if !want.None() {
		return want.Algo + "-" + want.Sum + "-" + base
	}
	sum := sha256.Sum256([]byte(raw))
	return "url-" + hex.EncodeToString(sum[:8]) + "-" + base
}

// download gets an http(s) URL into the cache, or finds it there.
func (r *Request) download(ctx context.Context, raw string, want *Checksum) (*Result, error) {
	if err := os.MkdirAll(r.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the ISO cache %s: %w", r.CacheDir, err)
	}
	entry := filepath.Join(r.CacheDir, cacheName(raw, want))
	unlock, err := r.lock(ctx, entry+".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := &Result{Path: entry, URL: raw, Checksum: checksumField(want)}
	if _, err := os.Stat(entry); err == nil {
		fresh, err := r.reuse(ctx, raw, entry, want)
		if err != nil {
			return nil, err
		}
		if fresh {
			return res, nil
		}
	}
	if err := r.get(ctx, raw, entry, want); err != nil {
		return nil, err
	}
	res.Downloaded = true
	if err := r.verify(ctx, raw, entry, want, true); err != nil {
		return nil, err
	}
	return res, nil
}

// lock takes the cache entry's lock, waiting while another build holds it
// (that build is downloading the same image).
func (r *Request) lock(ctx context.Context, p string) (func(), error) {
	for said := false; ; said = true {
		unlock, err := filelock.Lock(ctx, p)
		if err == nil {
			return unlock, nil
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if !said && r.Say != nil {
			r.Say("waiting for another build downloading the same ISO (%s)", p)
		}
	}
}

// reuse decides whether a cached download can be used: one with a
// checksum when it still matches (a damaged one is removed), one without
// when the server says it has not changed.
func (r *Request) reuse(ctx context.Context, raw, entry string, want *Checksum) (bool, error) {
	if !want.None() {
		err := r.verify(ctx, raw, entry, want, true)
		var mm *MismatchError
		if errors.As(err, &mm) {
			if r.Warn != nil {
				r.Warn("the cached %s is damaged (%s %s, want %s): downloading it again", filepath.Base(entry), mm.Algo, mm.Got, mm.Want)
			}
			return false, nil
		}
		if err == nil && r.Say != nil {
			r.Say("using %s from the ISO cache", fileName(raw))
		}
		return err == nil, err
	}
	v := readValidator(entry + ".json")
	if v.URL != raw || (v.ETag == "" && v.LastModified == "") {
		return false, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, raw, nil)
	if err != nil {
		return false, err
	}
	if v.ETag != "" {
		req.Header.Set("If-None-Match", v.ETag)
	}
	if v.LastModified != "" {
		req.Header.Set("If-Modified-Since", v.LastModified)
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		return false, unreachable(raw, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		r.verify(ctx, raw, entry, want, true) // warns: not verified
		if r.Say != nil {
			r.Say("using %s from the ISO cache (the server says it has not changed)", fileName(raw))
		}
		return true, nil
	}
	return false, nil
}

// get downloads raw into entry through entry.part, resuming a part an
// earlier try or run left, trying again after a lost connection.
func (r *Request) get(ctx context.Context, raw, entry string, want *Checksum) error {
	part, meta := entry+".part", entry+".part.json"
	err := retry.Do(ctx, backoff, attempts, func(attempt int, err error, wait time.Duration) {
		if r.Warn != nil {
			r.Warn("downloading %s (try %d of %d): %v; trying again in %s", redact(raw), attempt, attempts, err, wait)
		}
	}, func(ctx context.Context, attempt int) error {
		return r.getOnce(ctx, raw, part, meta, want)
	})
	if err != nil {
		return err
	}
	v := readValidator(meta)
	if err := os.Rename(part, entry); err != nil {
		return fmt.Errorf("moving the download into the ISO cache: %w", err)
	}
	os.Remove(meta)
	return v.write(entry + ".json")
}

// getOnce makes one request, from where part ends.
func (r *Request) getOnce(outer context.Context, raw, part, meta string, want *Checksum) error {
	var have int64
	if fi, err := os.Stat(part); err == nil {
		have = fi.Size()
	}
	v := readValidator(meta)
	// A part from another URL is resumed only when the checksum will
	// tell whether it belongs to the same file.
	if have > 0 && v.URL != raw && want.None() {
		have = 0
	}
	ctx, cancel := context.WithCancelCause(outer)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return retry.Permanent(fmt.Errorf("iso_url %s: %w", redact(raw), err))
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		if v.URL == raw && v.ifRange() != "" {
			req.Header.Set("If-Range", v.ifRange())
		}
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		if outer.Err() != nil {
			return retry.Permanent(context.Cause(outer))
		}
		return unreachable(raw, err)
	}
	defer resp.Body.Close()
	var start, total int64
	switch resp.StatusCode {
	case http.StatusOK:
		start, total = 0, resp.ContentLength
	case http.StatusPartialContent:
		s, t, ok := contentRange(resp.Header.Get("Content-Range"))
		if !ok || s != have {
			// Not the range asked for: start over.
			os.Remove(part)
			return fmt.Errorf("the server sent bytes from %d (Content-Range %q) when asked for %d on", s, resp.Header.Get("Content-Range"), have)
		}
		start, total = s, t
	case http.StatusRequestedRangeNotSatisfiable:
		if v.Size > 0 && have == v.Size {
			return nil // the part is the whole file
		}
		os.Remove(part)
		return errors.New("the server refused to resume the partial download: starting over")
	default:
		err := fmt.Errorf("iso_url %s cannot be downloaded: the server answered %s", redact(raw), resp.Status)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
			return retry.Permanent(err)
		}
		return err
	}
	if total < 0 {
		total = 0
	}
	nv := validator{URL: raw, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Size: total}
	if err := nv.write(meta); err != nil {
		return retry.Permanent(err)
	}
	flags := os.O_WRONLY | os.O_CREATE
	if start == 0 {
		flags |= os.O_TRUNC
	} else {
		flags |= os.O_APPEND
		if r.Say != nil {
			r.Say("resuming the download of %s at %d of %d bytes", fileName(raw), start, total)
		}
	}
	f, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return retry.Permanent(fmt.Errorf("writing the download: %w", err))
	}
	done := start
	stall := time.AfterFunc(stallTimeout, func() { cancel(fmt.Errorf("nothing received for %s", stallTimeout)) })
	defer stall.Stop()
	buf := make([]byte, 256<<10)
	var werr error
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			stall.Reset(stallTimeout)
			if _, werr = f.Write(buf[:n]); werr != nil {
				break
			}
			done += int64(n)
			if r.Progress != nil {
				r.Progress("download ISO", done, total)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			werr = err
			if cause := context.Cause(ctx); cause != nil {
				werr = cause
			}
			break
		}
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		if outer.Err() != nil {
			return retry.Permanent(context.Cause(outer))
		}
		return fmt.Errorf("the download of %s stopped at %d of %d bytes: %w", redact(raw), done, total, werr)
	}
	if total > 0 && done != total {
		return fmt.Errorf("the download of %s ended at %d of %d bytes", redact(raw), done, total)
	}
	return nil
}

var contentRangeRe = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+|\*)$`)

// contentRange reads "bytes start-end/total".
func contentRange(s string) (start, total int64, ok bool) {
	m := contentRangeRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, 0, false
	}
	start, _ = strconv.ParseInt(m[1], 10, 64)
	if m[3] != "*" {
		total, _ = strconv.ParseInt(m[3], 10, 64)
	}
	return start, total, true
}

// unreachable says that a URL could not be reached, naming it.
func unreachable(raw string, err error) error {
	return fmt.Errorf("iso_url %s cannot be reached: %v", redact(raw), unwrapURLError(err))
}
