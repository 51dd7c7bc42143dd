package planfile

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine"
)

// seedPlan is a plan as imgbuild plan -out writes it.
func seedPlan(t testing.TB) []byte {
	p := &Plan{
		Format: Format, Version: Version, Imgbuild: "v1.0.0", Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Description: "../images.star", Except: []string{"other"},
		VarFiles:  []Digest{{Path: "vars.json", SHA256: "ab"}},
		Set:       []SetVar{{Name: "version", Value: "2", Hash: "hmac:1"}, {Name: "token", Hash: "hmac:2"}},
		Sources:   []Digest{{Path: "images.star", SHA256: "cd"}},
		Variables: []Variable{{Name: "token", Value: "(sensitive)", Sensitive: true, Hash: "hmac:2"}, {Name: "version", Value: `"2"`, Source: "--var"}},
		KeyID:     "k",
		Builds: []Build{
			{Name: "base", Driver: "local", Wave: 1, Needs: []string{}, Fingerprint: "f1", Inputs: &engine.Inputs{Driver: "local", Files: map[string]string{"scripts/a.sh": "sha256:1"}}},
			{Name: "web", Driver: "local", Wave: 2, Needs: []string{"base"}, Fingerprint: "f2", Inputs: &engine.Inputs{Driver: "local", Upstream: map[string]string{"base": "(to be built)"}}, Deferred: []string{"env"}},
		},
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// FuzzReadPlan feeds the plan-file reader damaged plans: it returns a
// plan or an error, never panics, and a plan it accepts is written and
// read back the same, and holds what a run needs.
func FuzzReadPlan(f *testing.F) {
	good := seedPlan(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"format": "imgbuild-plan", "version": 2}`))
	f.Add([]byte(`{"format": "imgbuild-plan", "version": 1, "description": "x", "builds": [{"name": "a", "needs": ["b"], "fingerprint": "f", "inputs": {}}]}`))
	f.Add([]byte(`{"format": 1}`))
	f.Add([]byte(`{k: v}`))
	f.Add([]byte("\xef\xbb\xbf {}"))
	f.Add([]byte(strings.Replace(string(good), `"builds": [`, `"builds": null, "x": [`, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		kind, _ := Sniff(data)
		p, err := Read(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		if kind != IsPlan {
			t.Fatalf("Read accepted what Sniff calls %d", kind)
		}
		if p.Description == "" {
			t.Fatal("accepted a plan without a description")
		}
		var b bytes.Buffer
		if err := p.Write(&b); err != nil {
			t.Fatal(err)
		}
		again, err := Read(b.Bytes())
		if err != nil {
			t.Fatalf("a plan Read accepted does not read back: %v\n%s", err, b.Bytes())
		}
		if len(again.Changes(p)) != 0 || strings.Join(again.BuildNames(), ",") != strings.Join(p.BuildNames(), ",") {
			t.Fatalf("read back differently: %v", again.Changes(p))
		}
	})
}

func TestChangesNameWhatChanged(t *testing.T) {
	was, err := Read(seedPlan(t))
	if err != nil {
		t.Fatal(err)
	}
	if c := was.Changes(was); len(c) != 0 {
		t.Fatalf("a plan differs from itself: %v", c)
	}
	now, _ := Read(seedPlan(t))
	now.Sources[0].SHA256 = "other"
	now.VarFiles = nil
	now.Variables[0].Hash = "hmac:3"
	now.Variables[1].Value = `"3"`
	now.Builds[0].Inputs = &engine.Inputs{Driver: "local@2", Files: map[string]string{"scripts/b.sh": "sha256:2"}}
	now.Builds[0].Fingerprint = "f3"
	now.Builds = append(now.Builds[:1], Build{Name: "new", Fingerprint: "f", Inputs: &engine.Inputs{}})
	now.KeyID = "k2"
	now.Imgbuild = "v1.1.0"
	got := strings.Join(now.Changes(was), "\n")
	want := strings.Join([]string{
		"it was made by imgbuild v1.1.0, and this is imgbuild v1.0.0: builders and the standard library may differ",
		"description file images.star changed",
		"var file vars.json is read now and was not",
		"the fingerprint key is another (the plan's is k2, this one k): sensitive values cannot be compared; set IMGBUILD_FINGERPRINT_KEY as when planning",
		`variable "token" (sensitive) is not the plan's value: the plan holds only its digest, so give it as when planning (--var token=... or IMGBUILD_VAR_token)`,
		`variable "version" changed: "3" when planned, "2" now (from --var)`,
		`build "new" was removed (or is no longer selected)`,
		`build "base": the builder changed: local@2 when planned, local now`,
		`build "base": input file scripts/b.sh is no longer read`,
		`build "base": input file scripts/a.sh is read now and was not`,
		`build "web" was added`,
	}, "\n")
	if got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}
}
