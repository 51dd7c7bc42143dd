package amazon_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/imgbuild/imgbuild/drivers/amazon"
	"github.com/imgbuild/imgbuild/drivers/amazon/awstest"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// testedBuild is a build with tests that publishes in every way it can:
// copies to copyRegion, launch permissions and the tested tag.
func (h *harness) testedBuild(name, region, copyRegion, tests string) string {
	return fmt.Sprintf(`
amazon_ebs(
    name = %q,
    region = %q,
    source_ami = %q,
    instance_type = "t3.small",
    %s,
    ami_name = %q,
    ami_regions = [%q],
    ami_users = ["210987654321"],
    tags = {"app": "web"},
    provisioners = [shell(inline = ["echo provisioned"])],
    tests = %s,
)
`, name, region, h.sourceAMI(region), h.sshKeywords(), name+"-ami", copyRegion, tests)
}

// instancesOf are the instances, in any state, launched from image.
func (h *harness) instancesOf(region, image string) []types.Instance {
	h.t.Helper()
	out, err := h.moto.EC2(region).DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("image-id"), Values: []string{image}},
	}})
	if err != nil {
		h.t.Fatal(err)
	}
	var list []types.Instance
	for _, r := range out.Reservations {
		list = append(list, r.Instances...)
	}
	return list
}

// callsOf are the calls of op ("EC2.CopyImage") the faults middleware saw.
func callsOf(f *awstest.Faults, op string) []string {
	var out []string
	for _, c := range f.Calls() {
		if strings.HasPrefix(c, op+" ") {
			out = append(out, c)
		}
	}
	return out
}

// The tests of an amazon_ebs build run on an instance launched from the
// new AMI, with a key pair and security group of its own in the build's
// subnet, removed once they are over; only then is the AMI copied, shared
// and tagged tested.
func TestTestsRunOnAnInstanceOfTheNewAMIAndAPassPublishesIt(t *testing.T) {
	h := newHarness(t)
	const region, copyRegion = "ap-southeast-1", "ap-east-1"
	before := h.moto.Inventory(t, region, copyRegion)
	h.faults.Reset()
	start := time.Now().UTC().Truncate(time.Second)
	sum, rec := h.mustRun(h.testedBuild("tested", region, copyRegion,
		`[shell(name = "the machine answers", inline = ["echo hello from the test machine"])]`))
	a := sum.Result("tested").Artifact
	defer h.removeArtifact(a)

	steps := strings.Join(rec.Steps("tested"), ", ")
	want := "create AMI, test, test machine: key pair, test machine: security group, test machine: launch instance, test machine: wait for instance, test machine: connect, run tests, copy AMI, AMI attributes, tag tested"
	if !strings.HasSuffix(steps, want) {
		t.Errorf("steps %s\nwant them to end with %s", steps, want)
	}

	// One instance was launched from the new AMI: the test machine, with
	// its own key pair and group, in the build instance's subnet.
	tests := h.instancesOf(region, a.ID)
	if len(tests) != 1 {
		t.Fatalf("%d instances launched from %s, want the test machine alone", len(tests), a.ID)
	}
	tm := tests[0]
	builds := h.instancesOf(region, h.sourceAMI(region))
	var bi *types.Instance
	for i := range builds {
		if tags(builds[i].Tags)[amazon.TagBuild] == "tested" {
			bi = &builds[i]
		}
	}
	if bi == nil {
		t.Fatal("the build instance was not found")
	}
	if got := tags(tm.Tags)["Name"]; got != "imgbuild tested (tests)" {
		t.Errorf("test machine's Name tag %q", got)
	}
	if k := aws.ToString(tm.KeyName); !strings.HasSuffix(k, "-test") || k == aws.ToString(bi.KeyName) {
		t.Errorf("test machine's key pair %q, build instance's %q: want one of its own", k, aws.ToString(bi.KeyName))
	}
	if len(tm.SecurityGroups) != 1 || !strings.HasSuffix(aws.ToString(tm.SecurityGroups[0].GroupName), "-test") {
		t.Errorf("test machine's groups %+v: want a temporary one of its own", tm.SecurityGroups)
	}
	if aws.ToString(tm.SubnetId) != aws.ToString(bi.SubnetId) || aws.ToString(tm.VpcId) != aws.ToString(bi.VpcId) {
		t.Errorf("test machine in %s/%s, build instance in %s/%s", aws.ToString(tm.VpcId), aws.ToString(tm.SubnetId), aws.ToString(bi.VpcId), aws.ToString(bi.SubnetId))
	}
	if tm.State == nil || tm.State.Name != types.InstanceStateNameTerminated {
		t.Errorf("test machine is %+v, want it terminated", tm.State)
	}

	// The test ran there, before anything was published.
	calls := h.faults.Calls()
	launches := slices.IndexFunc(calls, func(c string) bool { return c == "EC2.RunInstances "+region })
	testLaunch := launches + 1 + slices.IndexFunc(calls[launches+1:], func(c string) bool { return c == "EC2.RunInstances "+region })
	firstCopy := slices.Index(calls, "EC2.CopyImage "+copyRegion)
	if testLaunch <= launches || firstCopy < testLaunch {
		t.Errorf("calls: the test machine (call %d) must be launched before the copy (call %d):\n%s", testLaunch, firstCopy, strings.Join(calls, "\n"))
	}
	res := sum.Result("tested")
	if res.Report == nil || len(res.Report.Tests) != 1 || !res.Report.Tests[0].Passed() || !slices.Contains(res.Report.Tests[0].Output, "hello from the test machine") {
		t.Errorf("report %+v", res.Report)
	}

	// Published: the copy, the permissions and the tested tag, in both
	// regions.
	ids := a.Fields["image_ids"].(map[string]string)
	for _, r := range []string{region, copyRegion} {
		img := h.image(r, ids[r])
		tg := tags(img.Tags)
		when, err := time.Parse(time.RFC3339, tg[amazon.TagTested])
		if err != nil || when.Before(start) || tg["app"] != "web" {
			t.Errorf("%s %s: tags %v: want app=web and %s = when the tests passed", r, ids[r], tg, amazon.TagTested)
		}
		attr, err := h.moto.EC2(r).DescribeImageAttribute(context.Background(), &ec2.DescribeImageAttributeInput{ImageId: aws.String(ids[r]), Attribute: types.ImageAttributeNameLaunchPermission})
		if err != nil || len(attr.LaunchPermissions) != 1 {
			t.Errorf("%s %s: launch permissions %+v, %v", r, ids[r], attr, err)
		}
	}
	// Nothing else is left: the test machine, its key pair and group are
	// gone with the build's.
	if left := before.Added(h.moto.Inventory(t, region, copyRegion).Without(h.artifactIDs(a)...)); len(left) > 0 {
		t.Errorf("the build left:\n  %s", strings.Join(left, "\n  "))
	}
}

// A failed test removes the AMI with its snapshots, and nothing is
// published: no copy, no permissions, no tested tag.
func TestAFailedTestOfTheNewAMIRemovesItAndPublishesNothing(t *testing.T) {
	h := newHarness(t)
	const region, copyRegion = "ap-northeast-3", "ap-east-1"
	regions := []string{region, copyRegion}
	before := h.moto.Inventory(t, regions...)
	h.faults.Reset()
	rec := &testkit.Recorder{}
	sum := h.run(context.Background(), h.testedBuild("untrusted", region, copyRegion, `[
        shell(name = "nginx answers", inline = ["echo looking for nginx", "exit 3"]),
        shell(name = "a passing one", inline = ["true"]),
    ]`), rec)
	res := sum.Result("untrusted")
	if res.Status != event.Failed {
		t.Fatalf("status %s, want failed\n%s", res.Status, rec.Log())
	}
	msg := res.Err.Error()
	if !strings.Contains(msg, "1 of 2 tests failed") || !strings.Contains(msg, `"nginx answers": `) || !strings.Contains(msg, "exited with status 3") {
		t.Errorf("error: %s", msg)
	}
	rec.FailedTest(t, "untrusted", "looking for nginx", "copy AMI", "AMI attributes", "tag tested")
	for _, op := range []string{"EC2.CopyImage", "EC2.ModifyImageAttribute", "EC2.CreateTags"} {
		if c := callsOf(h.faults, op); len(c) > 0 {
			t.Errorf("published: %v", c)
		}
	}
	// Count what is left, as the fault tests do: no AMI, no copy, no
	// snapshot, no instance, key pair or group.
	after := h.moto.Inventory(t, regions...)
	count := map[string]int{}
	for _, e := range before.Added(after) {
		count[strings.Fields(e)[0]+" "+strings.Fields(e)[1]]++
	}
	images, copies, snapshots := count[region+" image"], count[copyRegion+" image"], count[region+" snapshot"]+count[copyRegion+" snapshot"]
	t.Logf("after the failed test: %d AMIs in %s, %d copies in %s, %d snapshots", images, region, copies, copyRegion, snapshots)
	if left := before.Added(after); len(left) > 0 || images+copies+snapshots > 0 {
		t.Errorf("the build left:\n  %s", strings.Join(left, "\n  "))
	}
	// The tests did run on a machine of their own.
	if n := len(callsOf(h.faults, "EC2.RunInstances")); n != 2 {
		t.Errorf("%d instances launched, want the build instance and the test machine", n)
	}
}

// With --on-error=abort a failed test keeps the AMI, and the test
// machine, and lists them.
func TestOnErrorAbortKeepsAndListsTheAMIWhoseTestFailed(t *testing.T) {
	priv := awstest.StartPrivate(t)
	priv.Setenv(t)
	h := newHarnessOn(t, priv)
	const region, copyRegion = "eu-west-1", "us-east-1"
	_, items := h.runOnErrorAbort(h.testedBuild("kept", region, copyRegion, `[shell(name = "fails", inline = ["exit 1"])]`))
	imgs, err := h.moto.EC2(region).DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"}})
	if err != nil || len(imgs.Images) != 1 {
		t.Fatalf("images kept: %+v, %v", imgs, err)
	}
	img := imgs.Images[0]
	joined := strings.Join(items, "\n")
	wants := []string{
		fmt.Sprintf("AMI %s and snapshots %s in %s", aws.ToString(img.ImageId), strings.Join(snapshotIDs(img), ", "), region),
		"key pair imgbuild-kept-", "-test in " + region, // the test machine's
	}
	for _, want := range wants {
		if !strings.Contains(joined, want) {
			t.Errorf("leftovers:\n%s\nwant %q", joined, want)
		}
	}
	if tm := h.instancesOf(region, aws.ToString(img.ImageId)); len(tm) != 1 || tm[0].State.Name != types.InstanceStateNameRunning {
		t.Errorf("test machine %+v: want it kept running", tm)
	}
	copies, err := h.moto.EC2(copyRegion).DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"}})
	if err != nil || len(copies.Images) != 0 {
		t.Errorf("copies in %s: %+v, %v", copyRegion, copies, err)
	}
}

func snapshotIDs(img types.Image) []string {
	var out []string
	for _, m := range img.BlockDeviceMappings {
		if m.Ebs != nil {
			out = append(out, aws.ToString(m.Ebs.SnapshotId))
		}
	}
	return out
}

func TestTestsOnABuildThatSkipsTheAMIAreRefused(t *testing.T) {
	h := newHarness(t)
	_, err := h.load(fmt.Sprintf(`
amazon_ebs(name = "notest", region = "eu-west-1", source_ami = "ami-12345678", instance_type = "t3.small", %s,
           skip_create_ami = True,
           tests = [shell(inline = ["true"])])
`, h.sshKeywords()))
	want := "images.star:4:12: amazon_ebs: for parameter tests: skip_create_ami = True makes no AMI to launch and test: remove tests, or remove skip_create_ami"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v\nwant %s", err, want)
	}
}
