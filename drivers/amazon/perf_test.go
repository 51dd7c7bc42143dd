package amazon_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/imgbuild/imgbuild/drivers/amazon"
	"github.com/imgbuild/imgbuild/drivers/amazon/awstest"
	"github.com/imgbuild/imgbuild/drivers/local"
	"github.com/imgbuild/imgbuild/drivers/post"
	"github.com/imgbuild/imgbuild/drivers/provision"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine"
)

// inFlight is a Finalize middleware (after the driver's cap) that measures
// how many calls are sent at once.
type inFlight struct{ now, peak atomic.Int32 }

func (f *inFlight) middleware(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("test/in-flight",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			n := f.now.Add(1)
			for {
				p := f.peak.Load()
				if n <= p || f.peak.CompareAndSwap(p, n) {
					break
				}
			}
			defer f.now.Add(-1)
			// The call takes 2ms on the way, as on a network, so that the
			// calls of parallel builds overlap.
			select {
			case <-time.After(2 * time.Millisecond):
			case <-ctx.Done():
				return middleware.FinalizeOutput{}, middleware.Metadata{}, ctx.Err()
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

// throttle answers every twentieth attempt with EC2's
// throttling error, inside the retry loop, as AWS does under load.
type throttle struct {
	calls, throttled atomic.Int32
}

func (th *throttle) middleware(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("test/throttle",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if th.calls.Add(1)%20 == 0 {
				th.throttled.Add(1)
				return middleware.FinalizeOutput{}, middleware.Metadata{}, &smithy.GenericAPIError{Code: "RequestLimitExceeded", Message: "Request limit exceeded.", Fault: smithy.FaultClient}
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

func TestParallelBuildsShareTheRegionsCallCapAndRideOutThrottling(t *testing.T) {
	moto := awstest.Start(t)
	sshd := sshtest.Start(t)
	var fl inFlight
	var th throttle
	d := amazon.New(amazon.Options{CallsPerRegion: 3, APIOptions: []func(*middleware.Stack) error{
		moto.Guard(), moto.CloudInit(t, sshd), fl.middleware, th.middleware,
	}})
	reg := engine.NewRegistry()
	local.Register(reg)
	provision.Register(reg)
	post.Register(reg)
	d.Register(reg)
	h := &harness{t: t, moto: moto, sshd: sshd, faults: &awstest.Faults{}, reg: reg}
	const region = "ap-southeast-3"
	var src strings.Builder
	for i := range 6 {
		fmt.Fprintf(&src, "amazon_ebs(name = \"p%d\", region = %q, source_ami = %q, instance_type = \"t3.small\", %s, skip_create_ami = True)\n",
			i, region, h.sourceAMI(region), h.sshKeywords())
	}
	before := moto.Inventory(t, region)
	h.mustRun(src.String())
	if p := fl.peak.Load(); p > 3 || p < 2 {
		t.Errorf("at most %d calls were in flight at once in %s; want 2 or 3 (the cap is 3)", p, region)
	}
	if th.throttled.Load() == 0 {
		t.Error("nothing was throttled")
	}
	if left := before.Added(moto.Inventory(t, region)); len(left) > 0 {
		t.Errorf("the builds left:\n  %s", strings.Join(left, "\n  "))
	}
	t.Logf("%d attempts, %d throttled and retried, peak %d in flight", th.calls.Load(), th.throttled.Load(), fl.peak.Load())
}

// simpleBuild is the benchmarks' build: one region, temporary key pair and
// security group, an AMI, no provisioner.
func (h *harness) simpleBuild(name, region, amiName string) string {
	return fmt.Sprintf("amazon_ebs(name = %q, region = %q, source_ami = %q, instance_type = \"t3.small\", %s, ami_name = %q)\n",
		name, region, h.sourceAMI(region), h.sshKeywords(), amiName)
}

// BenchmarkSimpleBuild runs one simple build per iteration and reports the
// API calls it makes (calls/build), listing them once.
func BenchmarkSimpleBuild(b *testing.B) {
	h := newHarness(b)
	const region = "us-east-1"
	var calls []string
	b.ResetTimer()
	for i := range b.N {
		h.faults.Reset()
		sum, _ := h.mustRun(h.simpleBuild("simple", region, fmt.Sprintf("bench-simple-%d-%d", time.Now().UnixNano(), i)))
		calls = h.faults.Calls()
		b.StopTimer()
		h.removeArtifact(sum.Result("simple").Artifact)
		b.StartTimer()
	}
	b.ReportMetric(float64(len(calls)), "calls/build")
	b.Logf("API calls of one simple build (%d; the AMI is pending for %d polls, each a DescribeImages and a DescribeSnapshots):\n  %s",
		len(calls), awstest.PendingPolls, strings.Join(calls, "\n  "))
	writeBenchReport("simple", fmt.Sprintf("calls per simple build: %d\n  %s\n", len(calls), strings.Join(calls, "\n  ")))
}

// BenchmarkParallelBuilds20 runs 20 simple builds at once (--parallel 20)
// per iteration: ns/op is the wall time of the 20.
func BenchmarkParallelBuilds20(b *testing.B) {
	h := newHarness(b)
	const region = "us-east-1"
	var total time.Duration
	b.StopTimer()
	for i := range b.N {
		var src strings.Builder
		for j := range 20 {
			src.WriteString(h.simpleBuild(fmt.Sprintf("b%02d", j), region, fmt.Sprintf("bench-par-%d-%d-%d", time.Now().UnixNano(), i, j)))
		}
		d, err := h.load(src.String())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		sum := engine.Run(context.Background(), d.Graph, h.reg, nil, engine.RunOptions{Workspace: d.Root, TempDir: b.TempDir(), Parallel: 20})
		total += time.Since(start)
		b.StopTimer()
		if !sum.OK() {
			for _, r := range sum.Results {
				if r.Err != nil {
					b.Fatalf("%s: %v", r.Build, r.Err)
				}
			}
		}
		var wg sync.WaitGroup
		for _, r := range sum.Results {
			wg.Add(1)
			go func() { defer wg.Done(); h.removeArtifact(r.Artifact) }()
		}
		wg.Wait()
	}
	per := total / time.Duration(b.N)
	b.ReportMetric(per.Seconds(), "s/20-builds")
	writeBenchReport("parallel", fmt.Sprintf("20 parallel simple builds: %s wall time (mean of %d)\n", per.Round(time.Millisecond), b.N))
}

// writeBenchReport appends to $IMGBUILD_BENCH_REPORT, for bench/run.sh.
func writeBenchReport(what, text string) {
	path := os.Getenv("IMGBUILD_BENCH_REPORT")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteString(text)
}
