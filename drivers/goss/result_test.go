package goss

import (
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/cfgtool"
)

// validateOutput is goss validate --format json's output, in the shape
// goss documents (outputs/json.go): a failed service check, a passing
// file check and a skipped one.
const validateOutput = `{"results":[` +
	`{"duration":1234,"err":null,"matcher-result":{"actual":true,"expected":true,"message":"to equal"},"meta":null,"property":"exists","resource-id":"/etc/passwd","resource-type":"File","result":0,"skipped":false,"successful":true,"summary-line":"File: /etc/passwd: exists: matches expectation: true","test-type":0,"title":""},` +
	`{"duration":5678,"err":null,"matcher-result":{"actual":false,"expected":true,"message":"to equal"},"meta":null,"property":"running","resource-id":"nginx","resource-type":"Service","result":1,"skipped":false,"successful":false,"summary-line":"Service: nginx: running:\nExpected\n    false\nto equal\n    true","test-type":0,"title":"nginx serves the site"},` +
	`{"duration":0,"err":null,"property":"enabled","resource-id":"nginx","resource-type":"Service","result":2,"skipped":true,"successful":true,"summary-line":"Service: nginx: enabled: skipped","test-type":0,"title":""}` +
	`],"summary":{"failed-count":1,"skipped-count":1,"summary-line":"Count: 3, Failed: 1, Skipped: 1, Duration: 0.007s","test-count":3,"total-duration":7000000}}
`

func TestParseResultNamesTheFailedChecks(t *testing.T) {
	r, err := ParseResult([]byte(validateOutput))
	if err != nil {
		t.Fatal(err)
	}
	if r.Summary.TestCount != 3 || r.Summary.FailedCount != 1 || r.Summary.SummaryLine != "Count: 3, Failed: 1, Skipped: 1, Duration: 0.007s" {
		t.Errorf("summary %+v", r.Summary)
	}
	var lines []string
	for _, c := range r.Results {
		lines = append(lines, c.Line())
	}
	want := []string{
		"ok File: /etc/passwd: exists: matches expectation: true",
		"FAILED nginx serves the site: Service: nginx: running: Expected false to equal true",
		"skipped Service: nginx: enabled: skipped",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if f := r.Failed(); len(f) != 1 || f[0].ResourceID != "nginx" || f[0].Property != "running" {
		t.Errorf("failed %+v", f)
	}
}

func TestParseResultSaysWhenThereIsNoJSON(t *testing.T) {
	if _, err := ParseResult(nil); err == nil || err.Error() != "it printed nothing" {
		t.Errorf("empty output: %v", err)
	}
	if _, err := ParseResult([]byte("Failures/Skipped:\n")); err == nil {
		t.Errorf("rspecish output parsed as JSON")
	}
}

// TestUseSudoRunsGossThroughSudoWithItsEnvironment: sudo resets the
// environment, so vars_env goes through env; sudo is not installed on this
// machine, so the command is read, not run.
func TestUseSudoRunsGossThroughSudoWithItsEnvironment(t *testing.T) {
	g := &Goss{cfg: &Config{Tests: []string{"/w/goss/web.yaml"}, UseSudo: true, VarsEnv: map[string]string{"ROLE": "web"}, Format: "tap", RetryTimeout: time.Minute, Sleep: 5 * time.Second}}
	stage := &cfgtool.Stage{Dir: "/tmp/imgbuild-goss-1"}
	line, err := g.Command(stage, false)
	if err != nil {
		t.Fatal(err)
	}
	want := "cd /tmp/imgbuild-goss-1 && sudo -n env ROLE=web /tmp/imgbuild-goss-1/goss -g /tmp/imgbuild-goss-1/web.yaml validate --retry-timeout 1m0s --sleep 5s --format tap"
	if line != want {
		t.Errorf("command:\n got %s\nwant %s", line, want)
	}
}
