package rootfs

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestSourcesParsing(t *testing.T) {
	deb822 := `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
`
	if got := pickMirror(parseDeb822(deb822)); got != "http://deb.debian.org/debian" {
		t.Errorf("deb822: %q", got)
	}
	disabled := "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\nEnabled: no\n\nTypes: deb-src deb\nURIs:\n http://mirror.example/debian/\nSuites: trixie\n"
	if got := pickMirror(parseDeb822(disabled)); got != "http://mirror.example/debian" {
		t.Errorf("deb822 with a disabled stanza and a continuation line: %q", got)
	}
	oneLine := `# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb http://security.debian.org/debian-security bookworm-security main
deb [arch=amd64 signed-by=/k.gpg] https://mirror.example/debian/ bookworm main contrib # comment
deb http://later.example/debian bookworm main
`
	if got := pickMirror(parseOneLine(oneLine)); got != "https://mirror.example/debian" {
		t.Errorf("one-line: %q", got)
	}
	if got := pickMirror(parseOneLine("deb cdrom:[Debian]/ bookworm main\n")); got != "" {
		t.Errorf("a cdrom source: %q", got)
	}
}

func TestHostMirrorFallsBackToDebiansDefault(t *testing.T) {
	saved := aptSources
	defer func() { aptSources = saved }()
	dir := t.TempDir()
	aptSources = []string{filepath.Join(dir, "sources.list"), filepath.Join(dir, "sources.list.d")}
	if got := HostMirror(); got != DefaultMirror {
		t.Errorf("no sources: %q", got)
	}
	os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "sources.list.d", "debian.sources"), []byte("Types: deb\nURIs: http://m.example/debian\nSuites: trixie\nComponents: main\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "sources.list.d", "z.list.disabled"), []byte("deb http://no.example/debian trixie main\n"), 0o644)
	if got := HostMirror(); got != "http://m.example/debian" {
		t.Errorf("from sources.list.d: %q", got)
	}
}

func FuzzSources(f *testing.F) {
	f.Add("Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n", true)
	f.Add("deb [trusted=yes] http://x/debian sid main\n", false)
	f.Add("deb [ http://x sid\n", false)
	f.Add("Types: deb\nURIs:\n http://a\n\tb\nSuites: x\nEnabled: no\n", true)
	f.Fuzz(func(t *testing.T, text string, deb822 bool) {
		var entries []aptSource
		if deb822 {
			entries = parseDeb822(text)
		} else {
			entries = parseOneLine(text)
		}
		m := pickMirror(entries)
		if m != "" {
			if err := checkMirrorURL(m); err != nil {
				t.Fatalf("picked %q, which is not a mirror URL: %v", m, err)
			}
		}
	})
}

func TestReleaseField(t *testing.T) {
	rel := "Origin: Debian\nSuite: stable\nCodename: trixie\n"
	if got := releaseField(rel, "Codename"); got != "trixie" {
		t.Errorf("Codename = %q", got)
	}
	if got := releaseField(rel, "Version"); got != "" {
		t.Errorf("Version = %q", got)
	}
}

func TestVersionLess(t *testing.T) {
	got := []string{"vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-10-amd64", "vmlinuz-5.10.0-1-amd64"}
	want := []string{"vmlinuz-5.10.0-1-amd64", "vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-10-amd64"}
	for i := 0; i < len(got); i++ {
		for j := i + 1; j < len(got); j++ {
			if versionLess(got[j], got[i]) {
				got[i], got[j] = got[j], got[i]
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sorted: %v", got)
	}
}
