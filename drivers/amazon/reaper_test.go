package amazon_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/imgbuild/imgbuild/drivers/amazon"
	"github.com/imgbuild/imgbuild/engine/journal"
)

// TestTheReaperRemovesWhatAKilledBuildLeftByItsTokenAndNothingElse makes,
// in two regions, what a build killed half-way leaves (a running instance
// with its volume, a key pair, a security group, an AMI with its
// snapshot, a launch template, all tagged with the build's token), plus
// the same untagged and tagged with another token: the reaper lists and
// removes exactly the first set.
func TestTheReaperRemovesWhatAKilledBuildLeftByItsTokenAndNothingElse(t *testing.T) {
	h := newHarness(t)
	regions := []string{"me-central-1", "ap-southeast-4"} // no other test uses them
	ctx := context.Background()
	leave := func(region, token string) {
		c := h.moto.EC2(region)
		var tags []types.Tag
		if token != "" {
			tags = []types.Tag{{Key: aws.String(amazon.TagToken), Value: aws.String(token)}}
		}
		spec := func(rt types.ResourceType) []types.TagSpecification {
			if tags == nil {
				return nil
			}
			return []types.TagSpecification{{ResourceType: rt, Tags: tags}}
		}
		name := "reap-" + token + "-" + region
		// A retry of a call whose answer came late (a loaded machine)
		// finds what the first attempt made.
		_, err := c.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String(name), PublicKeyMaterial: []byte(h.sshd.HostKeyLine), TagSpecifications: spec(types.ResourceTypeKeyPair)})
		must(t, duplicateIsFine(err))
		_, err = c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String("test"), TagSpecifications: spec(types.ResourceTypeSecurityGroup)})
		must(t, duplicateIsFine(err))
		run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(h.sourceAMI(region)), InstanceType: types.InstanceTypeT3Small, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			TagSpecifications: append(spec(types.ResourceTypeInstance), spec(types.ResourceTypeVolume)...)})
		must(t, err)
		_, err = c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: run.Instances[0].InstanceId, Name: aws.String(name),
			TagSpecifications: append(spec(types.ResourceTypeImage), spec(types.ResourceTypeSnapshot)...)})
		must(t, err)
		_, err = c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(name), LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(h.sourceAMI(region))},
			TagSpecifications: spec(types.ResourceTypeLaunchTemplate)})
		must(t, err)
	}
	for _, r := range regions {
		leave(r, "other")
		leave(r, "")
	}
	mid := h.moto.Inventory(t, regions...)
	for _, r := range regions {
		leave(r, "dead1234")
	}
	left := mid.Added(h.moto.Inventory(t, regions...))
	e := journal.Entry{Build: "web", Kind: amazon.JournalKind, What: "AWS resources tagged imgbuild:token=dead1234",
		Where: map[string]string{"token": "dead1234", "region": regions[0], "regions": strings.Join(regions, ",")}}
	rp := h.reg.Reapers[amazon.JournalKind]
	found, err := rp.Find(ctx, e)
	must(t, err)
	// Each region: instance, volume, key pair, group, image, snapshot,
	// launch template.
	if len(found) != 14 || len(left) != 14 {
		t.Errorf("the reaper found %d things (the build left %d):\n  %s\nleft:\n  %s", len(found), len(left), strings.Join(found, "\n  "), strings.Join(left, "\n  "))
	}
	must(t, rp.Remove(ctx, e))
	if added := mid.Added(h.moto.Inventory(t, regions...)); len(added) != 0 {
		t.Errorf("left after the reaper: %v", added)
	}
	if removed := h.moto.Inventory(t, regions...).Added(mid); len(removed) != 0 {
		t.Errorf("the reaper removed what was not the build's: %v", removed)
	}
	if found, _ := rp.Find(ctx, e); len(found) != 0 {
		t.Errorf("found after removing: %v", found)
	}
}

func duplicateIsFine(err error) error {
	if err != nil && strings.Contains(err.Error(), ".Duplicate") {
		return nil
	}
	return err
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
