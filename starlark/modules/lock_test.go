package modules

import (
	"strings"
	"testing"
)

var goodLock = `{
  "version": 1,
  "modules": [
    {
      "name": "platform",
      "git": "git@github.com:acme/platform.git",
      "ref": "v1.2.0",
      "path": "modules",
      "commit": "0123456789abcdef0123456789abcdef01234567",
      "hash": "sha256:` + strings.Repeat("ab", 32) + `"
    }
  ]
}
`

func TestALockReadsBackAsWritten(t *testing.T) {
	l, err := ParseLock([]byte(goodLock))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(l.Marshal()); got != goodLock {
		t.Errorf("Marshal:\n%s\nwant:\n%s", got, goodLock)
	}
}

func TestABadLockSaysHowToRepairIt(t *testing.T) {
	cases := map[string]string{
		`{"version": 1, "modules": [`:               "imgbuild.lock: unexpected EOF: it is written by imgbuild mod download; restore it from version control, or delete it and run imgbuild mod download",
		`{"version": 2, "modules": []}`:             "imgbuild.lock: version 2, this imgbuild reads version 1: upgrade imgbuild, or delete the lock and run imgbuild mod download",
		`{"version": 1, "modules": [], "extra": 1}`: `imgbuild.lock: json: unknown field "extra"`,
		`{"version": 1, "modules": []} {}`:          "imgbuild.lock: text after the lock",
		strings.Replace(goodLock, `"commit": "0123456789abcdef0123456789abcdef01234567"`, `"commit": "main"`, 1): `imgbuild.lock: module 1 ("platform"): a git module has a ref and a commit (40 or 64 hex digits), and no sha256`,
		strings.Replace(goodLock, `"hash": "sha256:`, `"hash": "md5:`, 1):                                        `imgbuild.lock: module 1 ("platform"): hash "md5:`,
		strings.Replace(goodLock, `"name": "platform"`, `"name": "Platform"`, 1):                                 `imgbuild.lock: module 1 ("Platform"): name "Platform" is not a module name`,
		strings.Replace(goodLock, `"path": "modules"`, `"path": "../x"`, 1):                                      `imgbuild.lock: module 1 ("platform"): dep "platform": path "../x" must be a directory inside the repository`,
	}
	for src, want := range cases {
		_, err := ParseLock([]byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n error = %v\n want %s", src, err, want)
		}
	}
}

// FuzzParseLock: whatever the text, ParseLock returns a lock or an error,
// and a lock it accepts writes back to text it accepts again, unchanged.
func FuzzParseLock(f *testing.F) {
	f.Add([]byte(goodLock))
	f.Add([]byte(`{"version": 1, "modules": []}`))
	f.Add([]byte(`{"version": 1, "modules": [{"name": "a", "url": "https://h/a.tar.gz", "sha256": "` + strings.Repeat("0", 64) + `", "hash": "sha256:` + strings.Repeat("1", 64) + `"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLock(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), LockFile+": ") {
				t.Errorf("error does not name the file: %v", err)
			}
			return
		}
		text := l.Marshal()
		again, err := ParseLock(text)
		if err != nil {
			t.Fatalf("written lock does not read back: %v\n%s", err, text)
		}
		if string(again.Marshal()) != string(text) {
			t.Fatalf("round trip changed the lock:\n%s\n%s", text, again.Marshal())
		}
	})
}
