package adapter

import (
	"strings"
	"testing"
)

func TestSplitWordsReadsTheQuotingSCPCallersUse(t *testing.T) {
	for in, want := range map[string]string{
		`scp -t '/root/.ansible/tmp/a b/x.py'`: `scp|-t|/root/.ansible/tmp/a b/x.py`,
		`scp -f "/tmp/q\"uote"`:                `scp|-f|/tmp/q"uote`,
		`scp -r -t -- /srv/it\'s`:              `scp|-r|-t|--|/srv/it's`,
		`/usr/bin/scp -v -d -t /x=y`:           `/usr/bin/scp|-v|-d|-t|/x=y`,
	} {
		words, ok := splitWords(in)
		if !ok || strings.Join(words, "|") != want {
			t.Errorf("splitWords(%q) = %q, %v; want %q", in, words, ok, want)
		}
	}
	for _, in := range []string{`scp -t /x; rm -rf /`, `scp -t $(id)`, `scp -t "$HOME"`, `scp -t 'open`, `scp -t ~/x`, `scp -t /x*`} {
		if words, ok := splitWords(in); ok {
			t.Errorf("splitWords(%q) = %q; want it refused as shell syntax", in, words)
		}
	}
}

func TestParseSCPKnowsSinkFromSourceAndRefusesTheRest(t *testing.T) {
	s, ok := parseSCP(`scp -r -p -t -- '/srv/x'`)
	if !ok || !s.sink || !s.recursive || !s.preserve || len(s.paths) != 1 || s.paths[0] != "/srv/x" {
		t.Errorf("sink: %+v %v", s, ok)
	}
	s, ok = parseSCP(`scp -f /a /b`)
	if !ok || s.sink || len(s.paths) != 2 {
		t.Errorf("source: %+v %v", s, ok)
	}
	for _, in := range []string{"scp /a /b", "scp -t -f /a", "scp -t /a /b", "scp -t", "scp -x -t /a", "scpx -t /a", "echo scp -t /a"} {
		if s, ok := parseSCP(in); ok {
			t.Errorf("parseSCP(%q) = %+v; want not an SCP request", in, s)
		}
	}
}

func TestParseStatReadsStatsFormat(t *testing.T) {
	fi, err := parseStat("41ed 4096 1700000000 1700000001 0 42 a name with spaces")
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 || fi.size != 4096 || fi.mtime.Unix() != 1700000001 || fi.gid != 42 || fi.name != "a name with spaces" {
		t.Errorf("parseStat: %+v, %v", fi, err)
	}
	for _, bad := range []string{"", "zz 1 2 3 4 5", "81a4 -1 2 3 4 5", "81a4 1 2 3", "81a4 1 2 3 4 99999999999"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

// FuzzSplitWords: whatever the line, splitting never panics, and a line
// it accepts keeps no unquoted shell syntax.
func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{`scp -t '/a b'`, `scp -f "/x\"y"`, `a\ b`, `"unterminated`, `x;y`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, ok := splitWords(s)
		if !ok {
			return
		}
		for _, w := range words {
			if w == "" && !strings.ContainsAny(s, `'"`) {
				t.Fatalf("an empty word from %q without quotes", s)
			}
		}
		parseSCP(s)
	})
}

// FuzzParseStat: any line stat might print parses or fails, never panics.
func FuzzParseStat(f *testing.F) {
	f.Add("81a4 12 1700000000 1700000000 0 0 name")
	f.Add("a1ff 7 0 0 1000 1000 link")
	f.Fuzz(func(t *testing.T, s string) {
		if fi, err := parseStat(s); err == nil && fi.size < 0 {
			t.Fatalf("negative size from %q", s)
		}
	})
}

// FuzzParseSCPEntry: any C/D line parses or fails, never panics, and an
// accepted one has a mode and a size in range.
func FuzzParseSCPEntry(f *testing.F) {
	f.Add("0644 12 name")
	f.Add("0755 0 dir")
	f.Fuzz(func(t *testing.T, s string) {
		mode, size, _, err := parseSCPEntry(s)
		if err == nil && (mode > 0o7777 || size < 0) {
			t.Fatalf("%q gave mode %o size %d", s, mode, size)
		}
		parseSCPTimes(s)
	})
}
