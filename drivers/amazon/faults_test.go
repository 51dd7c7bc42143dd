package amazon_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/amazon/awstest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// faultRun is one build run with faults injected, and what it left.
type faultRun struct {
	what    string
	elapsed time.Duration
	status  event.Status
	err     error
	leaks   []string
}

// faultLoop runs builds of one description with faults, checking after
// each that moto holds nothing the build made (beyond its AMIs when it
// succeeded, which are then removed).
type faultLoop struct {
	h        *harness
	regions  []string
	baseline awstest.Inventory
	runs     []faultRun
	n        int
}

func (l *faultLoop) run(what, src string, setup func(cancel context.CancelFunc, rec *testkit.Recorder)) faultRun {
	h := l.h
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &testkit.Recorder{}
	setup(cancel, rec)
	start := time.Now()
	sum := h.run(ctx, src, rec)
	elapsed := time.Since(start)
	res := sum.Results[0]
	after := h.moto.Inventory(h.t, l.regions...)
	if res.Status == event.Succeeded {
		after = after.Without(h.artifactIDs(res.Artifact)...)
		h.removeArtifact(res.Artifact)
	}
	if os.Getenv("IMGBUILD_FAULT_SLOW") != "" && elapsed > 1500*time.Millisecond {
		var b strings.Builder
		var t0 time.Time
		for _, e := range rec.Events() {
			if t0.IsZero() {
				t0 = e.Time
			}
			fmt.Fprintf(&b, "%8s %s [%s] %s%s\n", e.Time.Sub(t0).Round(time.Millisecond), e.Type, e.Step, e.Message, errSuffix(e.Error))
		}
		h.t.Logf("SLOW %s: %s\n%s", what, elapsed, b.String())
	}
	r := faultRun{what: what, elapsed: elapsed, status: res.Status, err: res.Err, leaks: l.baseline.Added(after)}
	if len(r.leaks) > 0 {
		h.t.Errorf("%s: the build (%s: %v) left:\n  %s\ninjected: %v\nevents:\n%s", what, res.Status, res.Err, strings.Join(r.leaks, "\n  "), h.faults.Injected(), rec.Log())
		l.baseline = h.moto.Inventory(h.t, l.regions...) // count each leak once
	}
	l.runs = append(l.runs, r)
	return r
}

func (l *faultLoop) leaks() int {
	n := 0
	for _, r := range l.runs {
		n += len(r.leaks)
	}
	return n
}

// dry runs the description without faults and returns the calls it made
// and the steps it ran.
func (l *faultLoop) dry(src string, faults ...awstest.Fault) ([]string, []string, *engine.Result) {
	h := l.h
	rec := &testkit.Recorder{}
	h.faults.Arm(nil, faults...)
	sum := h.run(context.Background(), src, rec)
	calls := h.faults.Calls()
	h.faults.Reset()
	res := sum.Results[0]
	if res.Status == event.Succeeded {
		h.removeArtifact(res.Artifact)
	}
	return calls, rec.Steps(res.Build), res
}

// faultJob is one run of the fault loop: what it breaks and how to arm it.
type faultJob struct {
	what      string
	spot      bool // the spot build, not the full one
	provision bool // with the full build's provisioner
	setup     func(h *harness, cancel context.CancelFunc, rec *testkit.Recorder)
}

// faultLanes is how many fault runs go at once, each lane with its own
// regions, sshd and fault injector: moto and sshd spend most of a run
// waiting.
const faultLanes = 3

var laneRegions = [faultLanes][]string{
	{"us-east-2", "eu-west-3", "ap-northeast-2"},
	{"us-west-2", "eu-south-1", "ap-south-2"},
	{"ca-west-1", "il-central-1", "af-south-1"},
}

// faultSource is the full build of fullBuild, in the lane's regions. The
// API calls are what the loop breaks: only the builds cancelled at a step
// keep fullBuild's shell provisioner (so that one is cancelled while its
// command runs); the others connect over SSH and run none, which saves a
// third of the loop's time on a busy machine.
func faultSource(h *harness, regions []string, name string, provision bool) string {
	s := h.fullBuild("web", name)
	if !provision {
		s = strings.Replace(s, `provisioners = [shell(inline = ["echo provisioned by $IMGBUILD_BUILD"])],`, "", 1)
	}
	s = strings.Replace(s, h.sourceAMI("eu-west-1"), h.sourceAMI(regions[0]), 1)
	s = strings.Replace(s, `region = "eu-west-1"`, fmt.Sprintf("region = %q", regions[0]), 1)
	return strings.Replace(s, `ami_regions = ["us-east-1", "ap-southeast-2"]`, fmt.Sprintf("ami_regions = [%q, %q]", regions[1], regions[2]), 1)
}

// spotSource is a spot build (a launch template and an instant fleet) in
// the lane's first region.
func spotSource(h *harness, regions []string, name string) string {
	return fmt.Sprintf(`amazon_ebs(name = "web", region = %q, source_ami = %q, instance_type = "t3.small", spot_price = "auto", %s, ami_name = %q, run_tags = {"purpose": "spot"})`,
		regions[0], h.sourceAMI(regions[0]), h.sshKeywords(), name)
}

// TestFaultAtEveryCallAndCancelAtEveryStepLeaveNothing breaks a full
// build (copies to two regions, permissions, deprecation, a provisioner)
// at every API call in every way (the call fails before it is sent; it is
// done but its answer is lost; the build is cancelled as it starts; the
// build is cancelled once it is done), breaks every cleanup call of a
// build that failed at its last step, and cancels the build at every
// step. After each, moto must hold nothing the build made.
//
// IMGBUILD_FAULT_SLOW=1 logs the events of runs slower than 1.5s;
// IMGBUILD_FAULT_REPORT=file writes the figures to file.
func TestFaultAtEveryCallAndCancelAtEveryStepLeaveNothing(t *testing.T) {
	h := newHarness(t)
	l := &faultLoop{h: h, regions: laneRegions[0], baseline: h.moto.Inventory(t, laneRegions[0]...)}
	calls, steps, res := l.dry(faultSource(h, laneRegions[0], "fault-dry", false))
	if res.Status != event.Succeeded {
		t.Fatalf("the build without faults: %s: %v", res.Status, res.Err)
	}
	t.Logf("a full build makes %d API calls:\n  %s", len(calls), strings.Join(calls, "\n  "))
	last := lastMainCall(calls)
	failCalls, _, failed := l.dry(faultSource(h, laneRegions[0], "fault-cleanup-dry", false), awstest.Fault{K: last, Mode: awstest.Fail})
	if failed.Status != event.Failed {
		t.Fatalf("failing call %d (%s) should fail the build: %s", last, calls[last-1], failed.Status)
	}

	var jobs []faultJob
	// 1. Every call, every way.
	for _, mode := range awstest.Modes {
		for k := 1; k <= len(calls); k++ {
			jobs = append(jobs, faultJob{fmt.Sprintf("%s at call %d (%s)", mode, k, calls[k-1]), false, false, func(h *harness, cancel context.CancelFunc, rec *testkit.Recorder) {
				h.faults.Arm(cancel, awstest.Fault{K: k, Mode: mode})
			}})
		}
	}
	// 2. Every cleanup call of a build that fails at its last step: the
	// failure path removes the AMI and its copies, and those calls fail
	// too.
	for _, mode := range []awstest.Mode{awstest.Fail, awstest.LoseAnswer} {
		for j := last + 1; j <= len(failCalls); j++ {
			jobs = append(jobs, faultJob{fmt.Sprintf("cleanup call %d (%s) %s after call %d failed", j, failCalls[j-1], mode, last), false, false, func(h *harness, cancel context.CancelFunc, rec *testkit.Recorder) {
				h.faults.Arm(cancel, awstest.Fault{K: last, Mode: awstest.Fail}, awstest.Fault{K: j, Mode: mode})
			}})
		}
	}
	// 2b. Every call of a spot build (launch template, instant fleet),
	// failed before it is sent and with its answer lost.
	spotCalls, _, spotRes := l.dry(spotSource(h, laneRegions[0], "fault-spot-dry"))
	if spotRes.Status != event.Succeeded {
		t.Fatalf("the spot build without faults: %s: %v", spotRes.Status, spotRes.Err)
	}
	for _, mode := range []awstest.Mode{awstest.Fail, awstest.LoseAnswer} {
		for k := 1; k <= len(spotCalls); k++ {
			jobs = append(jobs, faultJob{fmt.Sprintf("spot build: %s at call %d (%s)", mode, k, spotCalls[k-1]), true, false, func(h *harness, cancel context.CancelFunc, rec *testkit.Recorder) {
				h.faults.Arm(cancel, awstest.Fault{K: k, Mode: mode})
			}})
		}
	}
	// 3. Cancel at every step.
	for _, s := range steps {
		jobs = append(jobs, faultJob{"cancel at step " + s, false, true, func(h *harness, cancel context.CancelFunc, rec *testkit.Recorder) {
			h.faults.Reset()
			rec.OnEvent(func(e event.Event) {
				if e.Type == event.StepStarted && e.Step == s {
					cancel()
				}
			})
		}})
	}

	start := time.Now()
	loops := make([]*faultLoop, faultLanes)
	t.Run("lanes", func(t *testing.T) {
		for lane := range faultLanes {
			t.Run(fmt.Sprint(lane), func(t *testing.T) {
				t.Parallel()
				lh := newHarness(t)
				regions := laneRegions[lane]
				lp := &faultLoop{h: lh, regions: regions, baseline: lh.moto.Inventory(t, regions...)}
				loops[lane] = lp
				for i := lane; i < len(jobs); i += faultLanes {
					job := jobs[i]
					src := faultSource(lh, regions, fmt.Sprintf("fault-%d", i), job.provision)
					if job.spot {
						src = spotSource(lh, regions, fmt.Sprintf("fault-%d", i))
					}
					lp.run(job.what, src, func(cancel context.CancelFunc, rec *testkit.Recorder) {
						job.setup(lh, cancel, rec)
					})
				}
			})
		}
	})

	tried, leaks, failedRuns := 0, 0, 0
	var slowest faultRun
	for _, lp := range loops {
		if lp == nil {
			continue
		}
		tried += len(lp.runs)
		leaks += lp.leaks()
		for _, r := range lp.runs {
			if r.status != event.Succeeded {
				failedRuns++
			}
			if r.elapsed > slowest.elapsed {
				slowest = r
			}
		}
	}
	t.Logf("%d fault runs in %s on %d lanes (slowest: %s, %s)", tried, time.Since(start).Round(time.Millisecond), faultLanes, slowest.what, slowest.elapsed.Round(time.Millisecond))
	t.Logf("faults tried: %d (full build: %d calls × %d ways, %d cleanup calls × 2 ways, %d steps cancelled; spot build: %d calls × 2 ways); builds that failed or were cancelled: %d; leaks found: %d",
		tried, len(calls), len(awstest.Modes), len(failCalls)-last, len(steps), len(spotCalls), failedRuns, leaks)
	if tried != len(jobs) {
		t.Errorf("%d of %d fault runs ran", tried, len(jobs))
	}
	if out := os.Getenv("IMGBUILD_FAULT_REPORT"); out != "" {
		os.WriteFile(out, []byte(fmt.Sprintf("faults tried: %d\nleaks found: %d\ncalls per full build: %d\n", tried, leaks, len(calls))), 0o644)
	}
}

// lastMainCall is the number of the last call before the cleanups of a
// successful build begin (its first TerminateInstances).
func lastMainCall(calls []string) int {
	for i, c := range calls {
		if strings.HasPrefix(c, "EC2.TerminateInstances") {
			return i
		}
	}
	return len(calls)
}
