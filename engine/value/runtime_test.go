package value

import (
	"testing"
	"time"
)

func TestFormatTimeSpeaksPackersFormatdate(t *testing.T) {
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	cases := map[string]string{
		"":                       "2026-01-02T15:04:05Z",
		LayoutUnix:               "1767366245",
		"YYYYMMDDhhmmss":         "20260102150405",
		"YYYY-MM-DD'T'hh:mm:ssZ": "2026-01-02T15:04:05Z",
		"DD MMM YYYY hh:mm ZZZ":  "02 Jan 2026 15:04 UTC",
		"EEEE, H:mm aa":          "Friday, 3:04 pm",
	}
	for layout, want := range cases {
		got, err := FormatTime(at, layout)
		if err != nil || got != want {
			t.Errorf("FormatTime(%q) = %q, %v; want %q", layout, got, err, want)
		}
	}
	if err := CheckLayout("YYYY-QQ"); err == nil {
		t.Errorf("CheckLayout accepted an unknown directive")
	}
}

func TestResolveRunLeavesReferencesAndMakesPlainStrings(t *testing.T) {
	info := RunInfo{Start: time.Unix(0, 0), ID: "r1"}
	ts := &RunValue{Name: RunTimestamp}
	v := NewMap()
	v.Set("name", &Template{Parts: []Part{{Lit: "a-"}, {Run: ts}, {Lit: "-b"}}})
	v.Set("mixed", &Template{Parts: []Part{{Run: &RunValue{Name: RunID}}, {Lit: "/"}, {Ref: &Ref{Build: "base", Output: "id"}}}})
	v.Set("plain", String{S: "x"})
	got, err := ResolveRun(v, info)
	if err != nil {
		t.Fatal(err)
	}
	if s := Format(got); s != `{"name": "a-1970-01-01T00:00:00Z-b", "mixed": "r1/" + base.id, "plain": "x"}` {
		t.Errorf("resolved to %s", s)
	}
	if s := Format(v); s != `{"name": "a-" + (at run: timestamp) + "-b", "mixed": (at run: run_id) + "/" + base.id, "plain": "x"}` {
		t.Errorf("the original changed or shows as %s", s)
	}
	if _, err := Resolve(v, func(Ref) (Value, error) { return String{S: "id"}, nil }); err == nil {
		t.Errorf("Resolve accepted a run value the engine had not resolved")
	}
}
