package rootfs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/engine/schema"
)

// DefaultMirror is used when this machine's apt names no Debian mirror.
const DefaultMirror = "http://deb.debian.org/debian"

// aptSources are where apt reads its sources, in the order apt reads them.
var aptSources = []string{"/etc/apt/sources.list", "/etc/apt/sources.list.d"}

// HostMirror returns the Debian mirror this machine's apt is configured
// with: the first enabled "deb" source of the main archive (not a security
// or updates suite), from /etc/apt/sources.list then the files of
// /etc/apt/sources.list.d (one-line .list and deb822 .sources). It returns
// DefaultMirror when there is none.
func HostMirror() string {
	for _, src := range sourceFiles() {
		data, err := os.ReadFile(src)
		if err != nil {
			continue
		}
		var entries []aptSource
		if strings.HasSuffix(src, ".sources") {
			entries = parseDeb822(string(data))
		} else {
			entries = parseOneLine(string(data))
		}
		if m := pickMirror(entries); m != "" {
			return m
		}
	}
	return DefaultMirror
}

func sourceFiles() []string {
	var out []string
	for _, p := range aptSources {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		entries, _ := os.ReadDir(p)
		var names []string
		for _, e := range entries {
			if n := e.Name(); strings.HasSuffix(n, ".list") || strings.HasSuffix(n, ".sources") {
				names = append(names, filepath.Join(p, n))
			}
		}
		sort.Strings(names)
		out = append(out, names...)
	}
	return out
}

// aptSource is one apt source: its types (deb, deb-src), URIs and suites.
type aptSource struct {
	Types, URIs, Suites []string
	Enabled             bool
}

// parseOneLine reads sources.list lines: "deb [opts] uri suite comp...".
func parseOneLine(text string) []aptSource {
	var out []aptSource
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		typ := f[0]
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			// Options: up to the field ending with "]".
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) == 0 {
				continue
			}
			f = f[1:]
		}
		if len(f) < 2 {
			continue
		}
		out = append(out, aptSource{Types: []string{typ}, URIs: []string{f[0]}, Suites: []string{f[1]}, Enabled: true})
	}
	return out
}

// parseDeb822 reads deb822 .sources stanzas (Types, URIs, Suites,
// Enabled), separated by blank lines; continuation lines start with space.
func parseDeb822(text string) []aptSource {
	var out []aptSource
	cur := map[string]string{}
	last := ""
	flush := func() {
		if len(cur) > 0 {
			s := aptSource{
				Types:   strings.Fields(cur["types"]),
				URIs:    strings.Fields(cur["uris"]),
				Suites:  strings.Fields(cur["suites"]),
				Enabled: !strings.EqualFold(strings.TrimSpace(cur["enabled"]), "no"),
			}
			out = append(out, s)
		}
		cur = map[string]string{}
		last = ""
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last != "" {
				cur[last] += " " + strings.TrimSpace(line)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = strings.ToLower(strings.TrimSpace(k))
		cur[last] = strings.TrimSpace(v)
	}
	flush()
	return out
}

// pickMirror returns the first URI of an enabled deb source whose suites
// include a release of the main archive.
func pickMirror(entries []aptSource) string {
	for _, e := range entries {
		if !e.Enabled || !slices.Contains(e.Types, "deb") || len(e.URIs) == 0 {
			continue
		}
		main := false
		for _, s := range e.Suites {
			if !strings.Contains(s, "-") && !strings.Contains(s, "/") {
				main = true
			}
		}
		if !main {
			continue
		}
		for _, u := range e.URIs {
			if strings.Contains(u, "security") {
				continue
			}
			if p, err := url.Parse(u); err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" {
				return strings.TrimRight(u, "/")
			}
		}
	}
	return ""
}

// checkMirrorURL checks the mirror keyword's form.
func checkMirrorURL(m string) error {
	u, err := url.Parse(m)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return schema.Errorf("mirror", "%q is not an http:// or https:// URL of a Debian mirror, such as %q", m, DefaultMirror)
	}
	return nil
}

// mirrorClient is how the mirror is asked about the suite.
var mirrorClient = &http.Client{Timeout: 30 * time.Second}

// checkSuite asks the mirror for the suite's Release file, so that an
// unreachable mirror or an unknown suite is a clear error before
// debootstrap starts. It returns the suite's codename and the Release
// file (what the checkpoints are checked against).
func checkSuite(ctx context.Context, mirror, suite string) (string, []byte, error) {
	release := strings.TrimRight(mirror, "/") + "/dists/" + url.PathEscape(suite) + "/Release"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, release, nil)
	if err != nil {
		return "", nil, err
	}
	resp, err := mirrorClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", nil, context.Cause(ctx)
		}
		return "", nil, fmt.Errorf("cannot reach the mirror %s: fetching %s failed: %v; check the mirror keyword (or this machine's apt sources, which give the default) and the network", mirror, release, unwrapURLError(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		msg := fmt.Sprintf("unknown suite %q: the mirror %s has no %s (404 Not Found)", suite, mirror, release)
		known := knownSuites(ctx, mirror)
		candidates := known
		if len(candidates) == 0 {
			candidates = debootstrapSuites()
		}
		if near := schema.Nearest(suite, candidates); near != "" {
			msg += fmt.Sprintf("; did you mean %q?", near)
		}
		if len(known) > 0 {
			msg += " The mirror has: " + strings.Join(known, ", ")
		} else {
			msg += " Name a Debian codename (bookworm, trixie) or stable, testing, unstable"
		}
		return "", nil, errors.New(msg)
	case resp.StatusCode != http.StatusOK:
		return "", nil, fmt.Errorf("the mirror %s answered %s for %s: check the mirror keyword", mirror, resp.Status, release)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", nil, fmt.Errorf("reading %s: %w", release, err)
	}
	codename := releaseField(string(body), "Codename")
	if codename == "" {
		codename = suite
	}
	return codename, body, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// releaseField returns a field of a Release file ("Codename: bookworm").
func releaseField(release, name string) string {
	for _, line := range strings.Split(release, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

var distsLink = regexp.MustCompile(`href="([A-Za-z0-9][A-Za-z0-9._-]*)/"`)

// knownSuites lists the suites the mirror's dists/ directory index shows,
// for suggestions; nil when it cannot tell.
func knownSuites(ctx context.Context, mirror string) []string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(mirror, "/")+"/dists/", nil)
	if err != nil {
		return nil
	}
	resp, err := mirrorClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out []string
	seen := map[string]bool{}
	for _, m := range distsLink.FindAllStringSubmatch(string(body), -1) {
		s := m[1]
		// Keep releases: not -updates, -backports, -proposed-updates.
		if strings.Contains(s, "-") || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// debootstrapScripts is where debootstrap keeps one script per suite it
// knows.
var debootstrapScripts = "/usr/share/debootstrap/scripts"

// debootstrapSuites lists the suites debootstrap has a script for.
func debootstrapSuites() []string {
	entries, err := os.ReadDir(debootstrapScripts)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if n := e.Name(); !strings.ContainsAny(n, ".-") {
			out = append(out, n)
		}
	}
	return out
}
