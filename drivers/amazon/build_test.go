package amazon_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

var fullRegions = []string{"eu-west-1", "us-east-1", "ap-southeast-2"}

// fullBuild is a build that uses every part of the flow: copies to two
// regions, tags, snapshot tags, launch and snapshot permissions,
// deprecation, block devices and a provisioner.
func (h *harness) fullBuild(name, amiName string) string {
	return fmt.Sprintf(`
amazon_ebs(
    name = %q,
    region = "eu-west-1",
    source_ami = %q,
    instance_type = "t3.small",
    %s,
    ami_name = %q,
    ami_description = "web server",
    ami_regions = ["us-east-1", "ap-southeast-2"],
    tags = {"app": "web", "version": "1"},
    snapshot_tags = {"app": "web-snapshot"},
    run_tags = {"purpose": "build"},
    ami_users = ["210987654321"],
    ami_org_arns = ["arn:aws:organizations::123456789012:organization/o-abcde12345"],
    snapshot_users = ["210987654321"],
    deprecate_at = "2031-01-01T00:00:00Z",
    launch_block_device_mappings = [{"device_name": "/dev/xvda", "volume_type": "gp3", "volume_size": 20}],
    provisioners = [shell(inline = ["echo provisioned by $IMGBUILD_BUILD"])],
)
`, name, h.sourceAMI("eu-west-1"), h.sshKeywords(), amiName)
}

func TestFullBuildMakesTheAMIItsCopiesTagsAndPermissionsAndLeavesNothingElse(t *testing.T) {
	h := newHarness(t)
	before := h.moto.Inventory(t, fullRegions...)
	sum, rec := h.mustRun(h.fullBuild("web", "web-full-1"))
	a := sum.Result("web").Artifact
	defer h.removeArtifact(a)

	ids := a.Fields["image_ids"].(map[string]string)
	if len(ids) != 3 || a.ID != ids["eu-west-1"] || a.Region != "eu-west-1" || a.Platform != "aws" {
		t.Fatalf("artifact %+v", a)
	}
	seen := map[string]bool{}
	for _, region := range fullRegions {
		id := ids[region]
		if id == "" || seen[id] {
			t.Fatalf("image_ids %v: want a distinct id in each of %v", ids, fullRegions)
		}
		seen[id] = true
		img := h.image(region, id)
		c := h.moto.EC2(region)
		if aws.ToString(img.Name) != "web-full-1" || img.State != types.ImageStateAvailable || aws.ToString(img.Description) != "web server" {
			t.Errorf("%s %s: name %q state %s description %q", region, id, aws.ToString(img.Name), img.State, aws.ToString(img.Description))
		}
		if got := tags(img.Tags); !reflect.DeepEqual(got, map[string]string{"app": "web", "version": "1"}) {
			t.Errorf("%s %s: tags %v", region, id, got)
		}
		if aws.ToString(img.DeprecationTime) != "2031-01-01T00:00:00.000Z" {
			t.Errorf("%s %s: deprecation time %q", region, id, aws.ToString(img.DeprecationTime))
		}
		attr, err := c.DescribeImageAttribute(context.Background(), &ec2.DescribeImageAttributeInput{ImageId: aws.String(id), Attribute: types.ImageAttributeNameLaunchPermission})
		if err != nil {
			t.Fatal(err)
		}
		var perms []string
		for _, p := range attr.LaunchPermissions {
			perms = append(perms, aws.ToString(p.UserId)+aws.ToString(p.OrganizationArn))
		}
		if strings.Join(perms, ",") != "210987654321,arn:aws:organizations::123456789012:organization/o-abcde12345" {
			t.Errorf("%s %s: launch permissions %v", region, id, perms)
		}
		for _, m := range img.BlockDeviceMappings {
			snap := aws.ToString(m.Ebs.SnapshotId)
			out, err := c.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snap}})
			if err != nil || len(out.Snapshots) != 1 {
				t.Fatalf("%s snapshot %s: %v", region, snap, err)
			}
			if got := tags(out.Snapshots[0].Tags); !reflect.DeepEqual(got, map[string]string{"app": "web-snapshot"}) {
				t.Errorf("%s snapshot %s: tags %v", region, snap, got)
			}
			sa, err := c.DescribeSnapshotAttribute(context.Background(), &ec2.DescribeSnapshotAttributeInput{SnapshotId: aws.String(snap), Attribute: types.SnapshotAttributeNameCreateVolumePermission})
			if err != nil || len(sa.CreateVolumePermissions) != 1 || aws.ToString(sa.CreateVolumePermissions[0].UserId) != "210987654321" {
				t.Errorf("%s snapshot %s: create volume permissions %+v, %v", region, snap, sa, err)
			}
		}
	}
	if snaps := a.Fields["snapshot_ids"].([]string); len(snaps) != 1 || !strings.HasPrefix(snaps[0], "snap-") {
		t.Errorf("snapshot_ids %v", snaps)
	}
	if a.Fields["ami_name"] != "web-full-1" || a.Fields["region"] != "eu-west-1" || a.Fields["image_id"] != a.ID {
		t.Errorf("fields %v", a.Fields)
	}

	// The instance ran with the run tags and IMDSv2, and is terminated.
	out, err := h.moto.EC2("eu-west-1").DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + "imgbuild:build"), Values: []string{"web"}},
		{Name: aws.String("tag:purpose"), Values: []string{"build"}},
	}})
	if err != nil || len(out.Reservations) == 0 {
		t.Fatalf("the build instance: %v", err)
	}
	inst := out.Reservations[len(out.Reservations)-1].Instances[0]
	if inst.State.Name != types.InstanceStateNameTerminated {
		t.Errorf("instance %s is %s", aws.ToString(inst.InstanceId), inst.State.Name)
	}
	if inst.MetadataOptions == nil || inst.MetadataOptions.HttpTokens != types.HttpTokensStateRequired {
		t.Errorf("instance metadata options %+v: want IMDSv2 required", inst.MetadataOptions)
	}

	want := []string{"pre-validate", "source AMI", "key pair", "security group", "launch instance", "wait for instance",
		"connect", "provision", "stop instance", "create AMI", "copy AMI", "AMI attributes"}
	if got := rec.Steps("web"); !reflect.DeepEqual(got, want) {
		t.Errorf("steps %v\nwant %v", got, want)
	}
	var provisioned, progress bool
	for _, e := range rec.Of(event.Output) {
		provisioned = provisioned || e.Message == "provisioned by web"
	}
	for _, e := range rec.Of(event.Progress) {
		progress = progress || (e.Unit == "%" && e.Done > 0 && e.Done < 100 && strings.Contains(e.Message, "to be available"))
	}
	if !provisioned || !progress {
		t.Errorf("provisioner output seen: %v; AMI progress seen: %v\n%s", provisioned, progress, rec.Log())
	}

	left := before.Added(h.moto.Inventory(t, fullRegions...).Without(h.artifactIDs(a)...))
	if len(left) > 0 {
		t.Errorf("the build left:\n  %s", strings.Join(left, "\n  "))
	}
}

// makeImage makes an AMI named name in region directly (not through a
// build), from a fresh instance, and returns its id.
func (h *harness) makeImage(region, name string) string {
	h.t.Helper()
	c := h.moto.EC2(region)
	ctx := context.Background()
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(h.sourceAMI(region)), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: types.InstanceTypeT3Micro})
	if err != nil {
		h.t.Fatal(err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	defer c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	img, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(id), Name: aws.String(name)})
	if err != nil {
		h.t.Fatal(err)
	}
	// Wait until it is available, as a build would have.
	for i := 0; h.image(region, aws.ToString(img.ImageId)).State != types.ImageStateAvailable; i++ {
		if i == 10 {
			h.t.Fatalf("AMI %s stays pending", aws.ToString(img.ImageId))
		}
	}
	return aws.ToString(img.ImageId)
}

func TestBaseThenAppChainThroughImageID(t *testing.T) {
	h := newHarness(t)
	src := fmt.Sprintf(`
base = amazon_ebs(name = "base", region = "eu-central-1", source_ami = %q, instance_type = "t3.small", %s, ami_name = "chain-base")
amazon_ebs(name = "app", region = "eu-central-1", source_ami = base.image_id, instance_type = "t3.small", %s,
           ami_name = "chain-app-from-" + base.image_id, tags = {"base": base.image_id})
`, h.sourceAMI("eu-central-1"), h.sshKeywords(), h.sshKeywords())
	before := h.moto.Inventory(t, "eu-central-1")
	sum, rec := h.mustRun(src)
	base, app := sum.Result("base").Artifact, sum.Result("app").Artifact
	defer h.removeArtifact(base)
	defer h.removeArtifact(app)
	img := h.image("eu-central-1", app.ID)
	if aws.ToString(img.Name) != "chain-app-from-"+base.ID || tags(img.Tags)["base"] != base.ID {
		t.Errorf("app AMI: name %q tags %v; base is %s", aws.ToString(img.Name), tags(img.Tags), base.ID)
	}
	// The app's instance was launched from the base's AMI.
	out, err := h.moto.EC2("eu-central-1").DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:imgbuild:build"), Values: []string{"app"}},
	}})
	if err != nil || len(out.Reservations) == 0 {
		t.Fatalf("app instance: %v", err)
	}
	if got := aws.ToString(out.Reservations[len(out.Reservations)-1].Instances[0].ImageId); got != base.ID {
		t.Errorf("app launched from %s, want the base AMI %s", got, base.ID)
	}
	var order []string
	for _, e := range rec.Of(event.BuildStarted) {
		order = append(order, e.Build)
	}
	if strings.Join(order, ",") != "base,app" {
		t.Errorf("builds started in order %v", order)
	}
	left := before.Added(h.moto.Inventory(t, "eu-central-1").Without(append(h.artifactIDs(base), h.artifactIDs(app)...)...))
	if len(left) > 0 {
		t.Errorf("the builds left:\n  %s", strings.Join(left, "\n  "))
	}
}

func TestForceDeregisterReplacesTheAMIOfTheSameNameAndItsSnapshots(t *testing.T) {
	h := newHarness(t)
	old := h.makeImage("eu-west-2", "replace-me")
	oldSnaps := h.image("eu-west-2", old).BlockDeviceMappings
	sum, rec := h.mustRun(fmt.Sprintf(`
amazon_ebs(name = "web", region = "eu-west-2", source_ami = %q, instance_type = "t3.small", %s,
           ami_name = "replace-me", force_deregister = True, force_delete_snapshot = True)
`, h.sourceAMI("eu-west-2"), h.sshKeywords()))
	a := sum.Result("web").Artifact
	defer h.removeArtifact(a)
	c := h.moto.EC2("eu-west-2")
	out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"replace-me"}}}})
	if err != nil || len(out.Images) != 1 || aws.ToString(out.Images[0].ImageId) != a.ID || a.ID == old {
		t.Fatalf("AMIs named replace-me: %+v (%v); want only the new %s, not %s", out, err, a.ID, old)
	}
	for _, m := range oldSnaps {
		if _, err := c.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{aws.ToString(m.Ebs.SnapshotId)}}); err == nil {
			t.Errorf("the replaced AMI's snapshot %s is still there", aws.ToString(m.Ebs.SnapshotId))
		}
	}
	steps := rec.Steps("web")
	if steps[len(steps)-2] != "deregister existing AMI" || steps[len(steps)-1] != "create AMI" {
		t.Errorf("steps %v: the old AMI must be deregistered just before the new one is made", steps)
	}
}

func TestRunForceReplacesTheAMIOfTheSameName(t *testing.T) {
	h := newHarness(t)
	h.force = true
	old := h.makeImage("eu-west-3", "replace-me")
	sum, rec := h.mustRun(fmt.Sprintf(`
amazon_ebs(name = "web", region = "eu-west-3", source_ami = %q, instance_type = "t3.small", %s, ami_name = "replace-me")
`, h.sourceAMI("eu-west-3"), h.sshKeywords()))
	a := sum.Result("web").Artifact
	defer h.removeArtifact(a)
	out, err := h.moto.EC2("eu-west-3").DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"replace-me"}}}})
	if err != nil || len(out.Images) != 1 || aws.ToString(out.Images[0].ImageId) != a.ID || a.ID == old {
		t.Fatalf("AMIs named replace-me: %+v (%v); want only the new %s, not %s", out, err, a.ID, old)
	}
	if steps := rec.Steps("web"); !slices.Contains(steps, "deregister existing AMI") {
		t.Errorf("steps %v: run --force must deregister the AMI of the same name", steps)
	}
}

func TestNameClashFailsBeforeLaunchingAnything(t *testing.T) {
	h := newHarness(t)
	old := h.makeImage("us-west-1", "taken-name")
	defer h.moto.EC2("us-west-1").DeregisterImage(context.Background(), &ec2.DeregisterImageInput{ImageId: aws.String(old)})
	other := h.makeImage("us-west-2", "taken-name")
	defer h.moto.EC2("us-west-2").DeregisterImage(context.Background(), &ec2.DeregisterImageInput{ImageId: aws.String(other)})
	before := h.moto.Inventory(t, "us-west-1", "us-west-2")
	rec := &testkit.Recorder{}
	sum := h.run(context.Background(), fmt.Sprintf(`
amazon_ebs(name = "web", region = "us-west-1", source_ami = %q, instance_type = "t3.small", %s, ami_name = "taken-name", ami_regions = ["us-west-2"])
`, h.sourceAMI("us-west-1"), h.sshKeywords()), rec)
	r := sum.Result("web")
	want := fmt.Sprintf(`pre-validate: an AMI named "taken-name" already exists (%s in us-west-1, %s in us-west-2): choose another ami_name, or set force_deregister = True to replace it`, old, other)
	if r.Status != event.Failed || r.Err == nil || r.Err.Error() != want {
		t.Fatalf("status %s, error:\n%v\nwant:\n%s", r.Status, r.Err, want)
	}
	if got := rec.Steps("web"); !reflect.DeepEqual(got, []string{"pre-validate"}) {
		t.Errorf("steps %v: nothing may run after pre-validate", got)
	}
	if left := before.Added(h.moto.Inventory(t, "us-west-1", "us-west-2")); len(left) > 0 {
		t.Errorf("made: %v", left)
	}
}

func TestSpotAutoLaunchesThroughAnInstantFleetAndRemovesItsTemplate(t *testing.T) {
	h := newHarness(t)
	const region = "sa-east-1"
	before := h.moto.Inventory(t, region)
	sum, rec := h.mustRun(fmt.Sprintf(`
amazon_ebs(name = "spot", region = %q, source_ami = %q, instance_type = "t3.small", spot_price = "auto",
           spot_instance_types = ["t3a.small"], %s, ami_name = "spot-web", run_tags = {"purpose": "spot"})
`, region, h.sourceAMI(region), h.sshKeywords()))
	a := sum.Result("spot").Artifact
	defer h.removeArtifact(a)
	var launched bool
	for _, e := range rec.Of(event.Message) {
		launched = launched || strings.Contains(e.Message, "launched spot instance") && strings.Contains(e.Message, "through fleet fleet-")
	}
	if !launched {
		t.Errorf("no spot launch reported:\n%s", rec.Log())
	}
	out, err := h.moto.EC2(region).DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:imgbuild:build"), Values: []string{"spot"}}, {Name: aws.String("tag:purpose"), Values: []string{"spot"}},
	}})
	if err != nil || len(out.Reservations) != 1 {
		t.Fatalf("spot instance: %+v %v", out, err)
	}
	if inst := out.Reservations[0].Instances[0]; inst.InstanceLifecycle != types.InstanceLifecycleTypeSpot {
		t.Errorf("instance %s lifecycle %q, want spot", aws.ToString(inst.InstanceId), inst.InstanceLifecycle)
	}
	if left := before.Added(h.moto.Inventory(t, region).Without(h.artifactIDs(a)...)); len(left) > 0 {
		t.Errorf("the build left:\n  %s", strings.Join(left, "\n  "))
	}
}

func TestSkipCreateAMIProvisionsAndRemovesEverything(t *testing.T) {
	h := newHarness(t)
	const region = "eu-north-1"
	before := h.moto.Inventory(t, region)
	sum, rec := h.mustRun(fmt.Sprintf(`
amazon_ebs(name = "try", region = %q, source_ami = %q, instance_type = "t3.small", %s, skip_create_ami = True,
           provisioners = [shell(inline = ["echo tried"])])
`, region, h.sourceAMI(region), h.sshKeywords()))
	a := sum.Result("try").Artifact
	if a.ID != "" || a.Fields["image_id"] != "" {
		t.Errorf("artifact %+v: no AMI was to be made", a)
	}
	want := []string{"pre-validate", "source AMI", "key pair", "security group", "launch instance", "wait for instance", "connect", "provision"}
	if got := rec.Steps("try"); !reflect.DeepEqual(got, want) {
		t.Errorf("steps %v", got)
	}
	if left := before.Added(h.moto.Inventory(t, region)); len(left) > 0 {
		t.Errorf("the build left:\n  %s", strings.Join(left, "\n  "))
	}
}

func TestOnErrorAbortKeepsAndNamesWhatTheBuildMade(t *testing.T) {
	h := newHarness(t)
	const region = "ap-northeast-1"
	_, items := h.runOnErrorAbort(fmt.Sprintf(`
amazon_ebs(name = "broken", region = %q, source_ami = %q, instance_type = "t3.small", %s, ami_name = "never",
           provisioners = [shell(inline = ["exit 3"])])
`, region, h.sourceAMI(region), h.sshKeywords()))
	joined := strings.Join(items, "\n")
	for _, want := range []string{"instance i-", "key pair imgbuild-broken-", "security group sg-"} {
		if !strings.Contains(joined, want) || !strings.Contains(joined, "in "+region) {
			t.Errorf("leftovers %q: want %q ... in %s", items, want, region)
		}
	}
	// What it names is what exists; remove it.
	inv := h.moto.Inventory(t, region)
	for _, it := range items {
		if strings.HasPrefix(it, "scratch directory") {
			continue
		}
		id := strings.Fields(it)[len(strings.Fields(it))-3]
		if it2 := strings.Fields(it); it2[0] == "key" {
			id = it2[2]
		}
		found := false
		for e := range inv {
			found = found || strings.Contains(e, " "+id)
		}
		if !found {
			t.Errorf("leftover %q names %s, which does not exist", it, id)
		}
	}
	c := h.moto.EC2(region)
	out, _ := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tag:imgbuild:build"), Values: []string{"broken"}}}})
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(i.InstanceId)}})
			for _, g := range i.SecurityGroups {
				defer c.DeleteSecurityGroup(context.Background(), &ec2.DeleteSecurityGroupInput{GroupId: g.GroupId})
			}
			c.DeleteKeyPair(context.Background(), &ec2.DeleteKeyPairInput{KeyName: i.KeyName})
		}
	}
}

func TestSubnetFilterPicksTheSubnetAndThePublicIPGoesThroughTheInterface(t *testing.T) {
	h := newHarness(t)
	const region = "eu-south-2"
	c := h.moto.EC2(region)
	subnets, err := c.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("availability-zone"), Values: []string{region + "b"}}}})
	if err != nil || len(subnets.Subnets) != 1 {
		t.Fatalf("moto's default subnet in %sb: %v", region, err)
	}
	want := aws.ToString(subnets.Subnets[0].SubnetId)
	before := h.moto.Inventory(t, region)
	_, rec := h.mustRun(fmt.Sprintf(`
amazon_ebs(name = "net", region = %q, source_ami = %q, instance_type = "t3.small", %s, skip_create_ami = True,
           subnet_filter = {"availability-zone": %q, "default-for-az": "true"}, associate_public_ip_address = True)
`, region, h.sourceAMI(region), h.sshKeywords(), region+"b"))
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tag:imgbuild:build"), Values: []string{"net"}}}})
	if err != nil || len(out.Reservations) != 1 {
		t.Fatalf("instance: %v", err)
	}
	inst := out.Reservations[0].Instances[0]
	if aws.ToString(inst.SubnetId) != want || aws.ToString(inst.Placement.AvailabilityZone) != region+"b" {
		t.Errorf("instance in subnet %s (%s), want %s", aws.ToString(inst.SubnetId), aws.ToString(inst.Placement.AvailabilityZone), want)
	}
	var said bool
	for _, e := range rec.Of(event.Message) {
		said = said || strings.HasPrefix(e.Message, "subnet "+want+" ("+region+"b, VPC vpc-")
	}
	if !said {
		t.Errorf("the chosen subnet was not reported:\n%s", rec.Log())
	}
	if left := before.Added(h.moto.Inventory(t, region)); len(left) > 0 {
		t.Errorf("the build left:\n  %s", strings.Join(left, "\n  "))
	}
}
