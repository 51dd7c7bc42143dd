package amazon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"

	"github.com/imgbuild/imgbuild/drivers/amazon"
	"github.com/imgbuild/imgbuild/drivers/amazon/awstest"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

// TestUnchangedAMIsAreCheckedInOneCallPerRegionAndAGoneOneIsRebuilt runs
// three builds copied to a second region, then runs them again: nothing is
// launched, and the AMIs are checked with one DescribeImages call per
// region. An AMI deregistered since makes its build "artifact is gone".
func TestUnchangedAMIsAreCheckedInOneCallPerRegionAndAGoneOneIsRebuilt(t *testing.T) {
	h := newHarness(t)
	root := t.TempDir()
	var src strings.Builder
	for i := range 3 {
		fmt.Fprintf(&src, `amazon_ebs(name = "b%d", region = "eu-west-1", source_ami = %q, instance_type = "t3.small", %s,
    ami_name = "verify-%d-%d", ami_regions = ["us-east-1"])
`, i, h.sourceAMI("eu-west-1"), h.sshKeywords(), i, time.Now().UnixNano())
	}
	os.WriteFile(filepath.Join(root, "images.star"), []byte(src.String()), 0o644)
	d, err := description.Load(description.Options{File: filepath.Join(root, "images.star"), Registry: h.reg})
	if err != nil {
		t.Fatal(err)
	}
	store := engine.NewLocalStore(root)
	fp := &engine.Fingerprinter{Registry: h.reg, Workspace: root, Key: engine.NewFingerprintKey([]byte("test key"))}
	run := func() *engine.Summary {
		rec := &testkit.Recorder{}
		sum := engine.Run(context.Background(), d.Graph, h.reg, event.NewBus(rec), engine.RunOptions{
			Workspace: root, TempDir: t.TempDir(), Parallel: 8, Tracker: step.NewTracker(), Store: store, Fingerprinter: fp,
		})
		if err := store.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		return sum
	}
	first := run()
	for _, r := range first.Results {
		if r.Status != event.Succeeded {
			t.Fatalf("%s: %s %v", r.Build, r.Status, r.Err)
		}
		defer h.removeArtifact(r.Artifact)
	}

	h.faults.Reset()
	second := run()
	for _, r := range second.Results {
		if r.Status != event.UpToDate {
			t.Errorf("second run: %s is %s (%v)", r.Build, r.Status, r.Err)
		}
	}
	var describes []string
	for _, c := range h.faults.Calls() {
		if strings.HasPrefix(c, "EC2.RunInstances") {
			t.Errorf("the second run launched an instance: %s", c)
		}
		if strings.HasPrefix(c, "EC2.DescribeImages") {
			describes = append(describes, c)
		}
	}
	if len(describes) != 2 {
		t.Errorf("the second run checked the AMIs with %v, want one DescribeImages call per region", describes)
	}

	gone := first.Result("b1").Artifact.Fields["image_ids"].(map[string]string)["us-east-1"]
	if _, err := h.moto.EC2("us-east-1").DeregisterImage(context.Background(), &ec2.DeregisterImageInput{ImageId: aws.String(gone)}); err != nil {
		t.Fatal(err)
	}
	records, _ := store.Load(context.Background())
	marks := (&engine.Assessor{Graph: d.Graph, Fingerprinter: fp, Records: records}).Assess(context.Background())
	want := fmt.Sprintf("artifact is gone: AMI %s is no longer available in us-east-1", gone)
	if m := marks["b1"]; m.Mark != engine.MarkRebuild || strings.Join(m.Reasons, "; ") != want {
		t.Errorf("b1: %s %v, want rebuild: %s", m.Mark, m.Reasons, want)
	}
	if m := marks["b0"]; m.Mark != engine.MarkUpToDate {
		t.Errorf("b0: %s %v", m.Mark, m.Reasons)
	}
}

// TestTheRegionsOfAVerifyAreAskedAtOnce checks artifacts in two regions
// and holds each region's DescribeImages call until the other's has
// arrived: the check ends only if the calls are in flight together.
func TestTheRegionsOfAVerifyAreAskedAtOnce(t *testing.T) {
	moto := awstest.Start(t)
	arrived := make(chan string, 2)
	both := make(chan struct{})
	var once sync.Once
	var seen atomic.Int32
	barrier := func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("test/barrier",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if middleware.GetOperationName(ctx) == "DescribeImages" {
					arrived <- awsmiddleware.GetRegion(ctx)
					if seen.Add(1) == 2 {
						once.Do(func() { close(both) })
					}
					select {
					case <-both:
					case <-time.After(time.Minute):
						return middleware.InitializeOutput{}, middleware.Metadata{}, fmt.Errorf("DescribeImages in %s waited a minute for the other region's call: the regions are asked one after the other", awsmiddleware.GetRegion(ctx))
					}
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	}
	d := amazon.New(amazon.Options{APIOptions: []func(*middleware.Stack) error{moto.Guard(), barrier}})
	ids := map[string]string{"eu-west-1": "ami-0000000000000e001", "us-east-1": "ami-0000000000000e002"}
	errs := d.Verify(context.Background(), []engine.ArtifactCheck{{Build: "b", Config: &amazon.Config{}, Artifact: &engine.Artifact{Fields: map[string]any{"image_ids": ids}}}})
	close(arrived)
	var regions []string
	for r := range arrived {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	if strings.Join(regions, " ") != "eu-west-1 us-east-1" {
		t.Errorf("DescribeImages was called in %v; want once in each of eu-west-1 and us-east-1", regions)
	}
	// Neither AMI exists: the first region's answer is the build's.
	if want := "AMI ami-0000000000000e001 is no longer available in eu-west-1"; len(errs) != 1 || errs[0] == nil || errs[0].Error() != want {
		t.Errorf("Verify = %v; want [%s]", errs, want)
	}
}
