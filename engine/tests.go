package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/panics"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/value"
)

// DefaultTestTimeout bounds a test whose provisioner sets no timeout of
// its own (timeout = "..." on the test).
const DefaultTestTimeout = 10 * time.Minute

// testTailLines is how many of a test's last output lines its result
// keeps.
const testTailLines = 20

// TestResult is how one of a build's tests ended.
type TestResult struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // the provisioner: "shell", "testinfra"
	Pos  string `json:"position"`
	// Status is event.Passed or event.Failed.
	Status   event.Status  `json:"status"`
	Duration time.Duration `json:"duration_ns"`
	// Error is why it failed; Output the last lines it printed.
	Error  string   `json:"error,omitempty"`
	Output []string `json:"output,omitempty"`
}

// Passed reports whether the test passed.
func (t *TestResult) Passed() bool { return t.Status == event.Passed }

// TestStep is the test phase of a build, which every builder places after
// the steps that capture its image and before those that publish it
// (region copies, sharing, template conversion, moving outputs into
// place); the post-processors come after it too. It runs the build's tests
// = [...] on a fresh machine launched from the new image: Machine are the
// builder's steps that launch it and connect to it, run in a phase of
// their own whose cleanups remove the machine as soon as the tests are
// over (or keep it with --on-error=abort, as a failed build's machine is
// kept); Over is the step whose Communicator the tests run over (one of
// Machine, or, with no Machine, the build's own connection: null and local
// test the same target they provisioned).
//
// When a test fails the step fails, after every test has run: the build
// fails as a failed step makes it, so the image is removed by the cleanup
// of the step that made it, nothing after the test step runs (nothing is
// published) and the build's dependents are skipped.
//
// A builder adds it only when Job.HasTests; the engine fails a build whose
// builder left tests unrun.
type TestStep struct {
	Job     *Job
	Machine []step.Step
	Over    Connection
}

// Name implements step.Step.
func (s *TestStep) Name() string { return "test" }

// Run implements step.Step.
func (s *TestStep) Run(ctx context.Context) error {
	j := s.Job
	j.testsRan = true
	run := &runTests{job: j, over: s.Over}
	if len(s.Machine) == 0 {
		return run.Run(ctx)
	}
	steps := make([]step.Step, 0, len(s.Machine)+1)
	for _, m := range s.Machine {
		steps = append(steps, &machineStep{m})
	}
	return j.Steps.Sub().Run(ctx, append(steps, run)...)
}

// machineStep is one of the steps that launch the test machine, named so.
type machineStep struct{ step.Step }

func (m *machineStep) Name() string { return "test machine: " + m.Step.Name() }

// Cleanup implements step.Cleaner: the inner step's cleanup, if any.
func (m *machineStep) Cleanup(ctx context.Context, failed bool) error {
	if c, ok := m.Step.(step.Cleaner); ok {
		return c.Cleanup(ctx, failed)
	}
	return nil
}

// Leftovers implements step.Leaver.
func (m *machineStep) Leftovers() []string {
	if l, ok := m.Step.(step.Leaver); ok {
		return l.Leftovers()
	}
	return nil
}

// runTests runs every test, in order, over one connection.
type runTests struct {
	job  *Job
	over Connection
}

func (r *runTests) Name() string { return "run tests" }

func (r *runTests) Run(ctx context.Context) error {
	j := r.job
	comm := r.over.Communicator()
	if comm == nil {
		return errors.New("there is no connection to the test machine")
	}
	var failed []string
	for i, t := range j.tests {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		res := j.runTest(ctx, comm, t, i)
		j.report.Tests = append(j.report.Tests, res)
		if !res.Passed() {
			failed = append(failed, fmt.Sprintf("%q: %s", res.Name, res.Error))
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
	}
	switch len(failed) {
	case 0:
		j.UI.Say("all %d %s passed", len(j.tests), pluralWord(len(j.tests), "test", "tests"))
		return nil
	case 1:
		if len(j.tests) == 1 {
			return fmt.Errorf("test %s", failed[0])
		}
	}
	return fmt.Errorf("%d of %d tests failed:\n  %s", len(failed), len(j.tests), strings.Join(failed, "\n  "))
}

// errTestTimeout is the cause of a test's context ended by its timeout.
var errTestTimeout = errors.New("the test timed out")

// runTest runs one test and says how it ended, with TestStarted and
// TestFinished events around it.
func (j *Job) runTest(ctx context.Context, comm Communicator, t namedProvisioner, i int) TestResult {
	res := TestResult{Name: t.name, Kind: t.kind, Pos: t.pos}
	j.UI.Say("test %d/%d: %s (%s)", i+1, len(j.tests), t.name, t.pos)
	j.UI.Emit(event.Event{Type: event.TestStarted, Message: t.name})
	tail := &lastLines{n: testTailLines}
	untap := j.UI.Tap(func(e event.Event) {
		if e.Type == event.Output {
			tail.add(j.redact(e.Message))
		}
	})
	tctx, cancel := context.WithTimeoutCause(ctx, t.timeout, errTestTimeout)
	start := time.Now()
	env := &ProvisionEnv{UI: j.UI, Comm: comm, Build: j.Name, Driver: j.Driver, WorkDir: j.WorkDir, Workspace: j.Workspace, Outputs: j.OutputSet(), Force: j.Force}
	err := panics.Call(func() error { return t.p.Provision(tctx, env) })
	j.UI.Panicked(err)
	if errors.Is(context.Cause(tctx), errTestTimeout) && ctx.Err() == nil {
		how := fmt.Sprintf("its timeout = %q", t.timeout.String())
		if !t.ownTimeout {
			how = "the default timeout of a test: set timeout = \"...\" on the test to allow more"
		}
		err = fmt.Errorf("timed out after %s (%s)", t.timeout, how)
	}
	cancel()
	untap()
	res.Duration = time.Since(start)
	res.Output = tail.lines()
	res.Status = event.Passed
	if err != nil {
		res.Status, res.Error = event.Failed, j.redact(err.Error())
	}
	j.UI.Emit(event.Event{Type: event.TestFinished, Message: t.name, Status: res.Status, Elapsed: res.Duration, Error: res.Error, Items: res.Output})
	return res
}

// lastLines keeps the last n lines added.
type lastLines struct {
	mu   sync.Mutex
	n    int
	keep []string
}

func (l *lastLines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keep = append(l.keep, s)
	if len(l.keep) > l.n {
		l.keep = l.keep[len(l.keep)-l.n:]
	}
}

func (l *lastLines) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.keep...)
}

// HasTests reports whether the build has tests to run: its builder then
// adds a TestStep.
func (j *Job) HasTests() bool { return len(j.tests) > 0 }

// TestResults are the results of the tests run so far.
func (j *Job) TestResults() []TestResult { return append([]TestResult(nil), j.report.Tests...) }

// AddTests decodes test objects (references resolved by resolve; nil means
// there are none) and adds them to the tests a TestStep runs.
func (j *Job) AddTests(reg *Registry, objs []*value.Object, resolve value.Resolver) error {
	ps, err := j.decodeProvisioners(reg, objs, resolve)
	if err != nil {
		return err
	}
	names := map[*value.Object]string{}
	for i, n := range TestNames(objs, j.Workspace) {
		names[objs[i]] = n
	}
	for i := range ps {
		ps[i].name = names[ps[i].obj]
		ps[i].timeout = DefaultTestTimeout
		if def := reg.Provisioners[ps[i].kind]; def != nil {
			if d, ok := def.Schema.Get(ps[i].config, "timeout"); ok {
				if d, ok := d.(time.Duration); ok && d > 0 {
					ps[i].timeout, ps[i].ownTimeout = d, true
				}
			}
		}
	}
	j.tests = append(j.tests, ps...)
	return nil
}

// TestNames are the names of a build's tests: the name each was given,
// else its kind and what it works on ("shell (curl -fsS
// http://127.0.0.1/)"); a name given twice is numbered.
func TestNames(objs []*value.Object, workspace string) []string {
	names := make([]string, len(objs))
	seen := map[string]int{}
	for i, o := range objs {
		name := o.Name
		if name == "" {
			name = o.Kind
			if l := provisionerLabel(o, workspace); l != "" {
				name += " (" + l + ")"
			}
		}
		seen[name]++
		if n := seen[name]; n > 1 {
			name = fmt.Sprintf("%s #%d", name, n)
		}
		names[i] = name
	}
	return names
}

// TestName is the name of the i-th of tests (TestNames).
func TestName(tests []*value.Object, i int, workspace string) string {
	return TestNames(tests, workspace)[i]
}

// Report is what a build learned about its image besides the artifact:
// what it was built from, what is inside it and how its tests ended. The
// manifest records it; Result carries it.
type Report struct {
	// Fingerprint is the build's input fingerprint (Inputs.Fingerprint),
	// "" when the run keeps no state.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Upstream are the artifacts of the builds this one consumed.
	Upstream []Upstream `json:"upstream,omitempty"`
	// Packages are the packages installed in the image, listed over the
	// communicator after provisioning (nil when none could be listed);
	// PackageManager says how: "dpkg", "rpm", NoPackageManager when the
	// machine has neither, or "" when they were not listed (no
	// communicator, or one that runs commands on this machine).
	Packages       []Package `json:"packages,omitempty"`
	PackageManager string    `json:"package_manager,omitempty"`
	// Distro and DistroVersion are the machine's /etc/os-release ID and
	// VERSION_ID ("debian", "12"), as the package list was made.
	Distro        string `json:"distro,omitempty"`
	DistroVersion string `json:"distro_version,omitempty"`
	// Tests are the results of the build's tests, in order.
	Tests []TestResult `json:"tests,omitempty"`
}

// Upstream is an artifact a build consumed.
type Upstream struct {
	Build    string `json:"build"`
	Driver   string `json:"driver"`
	ID       string `json:"artifact_id"`
	Platform string `json:"platform,omitempty"`
	Region   string `json:"region,omitempty"`
}

// upstreamOf lists the artifacts in inputs, by build name.
func upstreamOf(inputs map[string]*Artifact) []Upstream {
	var out []Upstream
	for _, name := range slices.Sorted(maps.Keys(inputs)) {
		a := inputs[name]
		if a == nil {
			continue
		}
		out = append(out, Upstream{Build: name, Driver: a.Driver, ID: a.ID, Platform: a.Platform, Region: a.Region})
	}
	return out
}

// Package is one package installed in an image, as its package manager
// names it.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch,omitempty"`
	// Epoch is an RPM package's epoch, when it has one (dpkg's is part of
	// Version).
	Epoch string `json:"epoch,omitempty"`
}
