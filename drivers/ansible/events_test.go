package ansible

import (
	"strings"
	"testing"
)

func TestParseEventReadsOnlyTheRunsTaggedLines(t *testing.T) {
	tag := "imgbuild-ansible-event-0123456789abcdef"
	ev, ok, err := ParseEvent(tag, tag+` {"event": "failed", "host": "default", "task": "Install", "path": "site.yml:4", "msg": "no package", "ignored": false}`)
	if !ok || err != nil || ev.Event != "failed" || ev.Task != "Install" || ev.Path != "site.yml:4" || ev.Msg != "no package" {
		t.Errorf("ParseEvent = %+v, %v, %v", ev, ok, err)
	}
	for _, line := range []string{"TASK [x] ****", "imgbuild-ansible-event-ffffffffffffffff {\"event\": \"ok\"}", tag + "{}", ""} {
		if _, ok, _ := ParseEvent(tag, line); ok {
			t.Errorf("ParseEvent(%q) took Ansible's own line for an event", line)
		}
	}
	if _, ok, err := ParseEvent(tag, tag+" {not json"); !ok || err == nil {
		t.Errorf("a broken event: ok %v, err %v", ok, err)
	}
	if _, ok, err := ParseEvent(tag, tag+" {}"); !ok || err == nil {
		t.Errorf("an event without a type: ok %v, err %v", ok, err)
	}
}

func TestErrorBlockKeepsAnsiblesTextFromERROR(t *testing.T) {
	lines := []string{"[WARNING]: something", "ERROR! the role 'x' was not found", "", "The error appears to be in 'a.yml': line 3, column 7", "", ""}
	if got := errorBlock(lines); got != "ERROR! the role 'x' was not found\n\nThe error appears to be in 'a.yml': line 3, column 7" {
		t.Errorf("errorBlock = %q", got)
	}
	if got := errorBlock([]string{"fatal: [x]: FAILED!"}); got != "" {
		t.Errorf("errorBlock without ERROR! = %q", got)
	}
}

func TestATaskErrorNamesEveryFailure(t *testing.T) {
	e := &taskError{
		Failed:      []Event{{Task: "Install", Path: "site.yml:4", Host: "default", Msg: "first line\nsecond line"}},
		Unreachable: []Event{{Task: "Gather", Host: "default", Msg: ""}},
	}
	want := "task \"Install\" (site.yml:4) failed on default: first line\n    second line\ntask \"Gather\" could not reach default: (Ansible gave no message)"
	if e.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", e.Error(), want)
	}
}

func TestReadRequirementsKnowsBothForms(t *testing.T) {
	for in, want := range map[string]requirements{
		"- src: ./a.tar.gz\n":                             {roles: true},
		"roles:\n  - src: x\ncollections:\n  - name: y\n": {roles: true, collections: true},
		"collections:\n  - name: y\n":                     {collections: true},
		"":                                                {},
	} {
		got, err := readRequirements([]byte(in))
		if err != nil || got != want {
			t.Errorf("readRequirements(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"roles: 3\n", "plugins:\n  - x\n", "\"just a string\"\n", "roles: [\n"} {
		if _, err := readRequirements([]byte(bad)); err == nil {
			t.Errorf("readRequirements(%q) succeeded", bad)
		}
	}
}

// FuzzParseEvent: any line of output is either not an event, an event, or
// an error, and never a panic; an event always has a type.
func FuzzParseEvent(f *testing.F) {
	tag := "imgbuild-ansible-event-0123456789abcdef"
	f.Add(tag + ` {"event": "task", "name": "x", "path": "a.yml:1"}`)
	f.Add(tag + ` {"event": "stats", "hosts": {"default": {"ok": 1}}}`)
	f.Add("ok: [default]")
	f.Fuzz(func(t *testing.T, line string) {
		ev, ok, err := ParseEvent(tag, line)
		if ok && err == nil && ev.Event == "" {
			t.Fatalf("an event without a type from %q", line)
		}
		if !ok && !strings.HasPrefix(line, tag+" ") && err != nil {
			t.Fatalf("an error for a line that is not an event: %q", line)
		}
		var o outcome
		o.add(ev)
		_ = o.failure("p.yml", 2, strings.Split(line, "\n"))
	})
}

// FuzzErrorBlock: whatever stderr held, the block is a suffix of it that
// starts with ERROR!, or nothing.
func FuzzErrorBlock(f *testing.F) {
	f.Add("ERROR! x\n\nline")
	f.Add("[WARNING]: y\nERROR! z")
	f.Fuzz(func(t *testing.T, s string) {
		b := errorBlock(strings.Split(s, "\n"))
		if b != "" && (!strings.HasPrefix(b, "ERROR!") || !strings.Contains(s, b)) {
			t.Fatalf("block %q from %q", b, s)
		}
	})
}
