package goss

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Result is what goss validate --format json prints: every check's
// result and a summary.
type Result struct {
	Results []Check `json:"results"`
	Summary Summary `json:"summary"`
}

// Summary is goss's count of the checks.
type Summary struct {
	TestCount    int    `json:"test-count"`
	FailedCount  int    `json:"failed-count"`
	SkippedCount int    `json:"skipped-count"`
	SummaryLine  string `json:"summary-line"`
}

// Check is the result of one check: a property of a resource ("File:
// /etc/nginx/nginx.conf: exists").
type Check struct {
	Successful   bool   `json:"successful"`
	Skipped      bool   `json:"skipped"`
	ResourceType string `json:"resource-type"`
	ResourceID   string `json:"resource-id"`
	Property     string `json:"property"`
	Title        string `json:"title"`
	// SummaryLine is goss's own account of it, with what was expected
	// and what was found when it failed.
	SummaryLine string `json:"summary-line"`
	Err         any    `json:"err"`
}

// ParseResult reads goss validate's JSON output.
func ParseResult(data []byte) (*Result, error) {
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		s := strings.TrimSpace(string(data))
		if s == "" {
			return nil, errors.New("it printed nothing")
		}
		return nil, err
	}
	if r.Summary.SummaryLine == "" {
		r.Summary.SummaryLine = fmt.Sprintf("Count: %d, Failed: %d, Skipped: %d", r.Summary.TestCount, r.Summary.FailedCount, r.Summary.SkippedCount)
	}
	return &r, nil
}

// Failed are the checks that failed, in goss's order.
func (r *Result) Failed() []Check {
	var out []Check
	for _, c := range r.Results {
		if !c.Successful && !c.Skipped {
			out = append(out, c)
		}
	}
	return out
}

// Line is the check on one line, as the build's log and a failure show
// it: its outcome, title and goss's summary of it, goss's own line
// breaks folded.
func (c Check) Line() string {
	outcome := "ok"
	switch {
	case c.Skipped:
		outcome = "skipped"
	case !c.Successful:
		outcome = "FAILED"
	}
	what := c.SummaryLine
	if what == "" {
		what = fmt.Sprintf("%s: %s: %s", c.ResourceType, c.ResourceID, c.Property)
	}
	if c.Title != "" && !strings.Contains(what, c.Title) {
		what = c.Title + ": " + what
	}
	if c.Err != nil && !c.Successful {
		if s := fmt.Sprint(c.Err); s != "" && !strings.Contains(what, s) {
			what += " (error: " + s + ")"
		}
	}
	return outcome + " " + strings.Join(strings.Fields(what), " ")
}
