package render

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
)

// JUnit XML, as CI systems read it (Jenkins, GitLab, GitHub's test
// reporters): one testsuite per build with tests, one testcase per test.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the tests of a run's builds as JUnit XML (run
// --junit FILE). tests names each build's tests, as the plan does
// (engine.TestNames), so that the tests of a build that failed or was
// skipped before they ran are reported as skipped, with the reason. Every
// string goes through redact.
func WriteJUnit(w io.Writer, results []*engine.Result, tests map[string][]string, redact func(string) string) error {
	if redact == nil {
		redact = func(s string) string { return s }
	}
	top := junitSuites{Name: "imgbuild"}
	var total float64
	for _, r := range results {
		names := tests[r.Build]
		if len(names) == 0 {
			continue
		}
		s := junitSuite{Name: redact(r.Build), Properties: []junitProperty{{Name: "driver", Value: r.Driver}, {Name: "status", Value: string(r.Status)}}}
		if r.Artifact != nil && r.Artifact.ID != "" {
			s.Properties = append(s.Properties, junitProperty{Name: "artifact", Value: redact(r.Artifact.ID)})
		}
		ran := map[string]engine.TestResult{}
		if r.Report != nil {
			for _, t := range r.Report.Tests {
				ran[t.Name] = t
			}
		}
		var secs float64
		for _, name := range names {
			c := junitCase{Name: redact(name), Classname: redact(r.Build), Time: "0"}
			if t, ok := ran[name]; ok {
				c.Time = seconds(t.Duration.Seconds())
				secs += t.Duration.Seconds()
				out := redact(strings.Join(t.Output, "\n"))
				c.SystemOut = out
				if t.Status != event.Passed {
					c.Failure = &junitMessage{Message: firstLine(redact(t.Error)), Type: t.Kind, Text: redact(t.Error)}
					if out != "" {
						c.Failure.Text += "\n\nlast lines of output:\n" + out
					}
					s.Failures++
				}
			} else {
				c.Skipped = &junitMessage{Message: notRun(r, redact)}
				s.Skipped++
			}
			s.Cases = append(s.Cases, c)
			s.Tests++
		}
		s.Time = seconds(secs)
		total += secs
		top.Tests += s.Tests
		top.Failures += s.Failures
		top.Skipped += s.Skipped
		top.Suites = append(top.Suites, s)
	}
	top.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(top); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// notRun says why a build's test did not run.
func notRun(r *engine.Result, redact func(string) string) string {
	why := "the build " + r.Status.Shown()
	switch r.Status {
	case event.UpToDate:
		return "the image is up to date: it was tested when it was built"
	case event.Failed:
		why = "the build failed before this test ran"
	}
	if r.Err != nil {
		why += ": " + firstLine(redact(r.Err.Error()))
	}
	return why
}

func seconds(s float64) string { return fmt.Sprintf("%.3f", s) }

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
