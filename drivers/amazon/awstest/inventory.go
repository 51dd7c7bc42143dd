package awstest

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Inventory is what exists in moto that a build could leave: one entry per
// resource, "eu-west-1 instance i-0abc (running)". Instances are those not
// terminated, images and snapshots the account's own (moto's ~1,200
// public AMIs and their snapshots are not listed), fleets those not
// deleted.
type Inventory map[string]bool

// Inventory lists what exists in the regions.
func (s *Server) Inventory(t testing.TB, regions ...string) Inventory {
	t.Helper()
	inv := Inventory{}
	ctx := context.Background()
	for _, r := range regions {
		if err := s.list(ctx, r, inv); err != nil {
			t.Fatalf("awstest: listing what exists in %s: %v", r, err)
		}
	}
	return inv
}

func (s *Server) list(ctx context.Context, region string, inv Inventory) error {
	c := s.EC2(region)
	add := func(kind, id, detail string) {
		e := region + " " + kind + " " + id
		if detail != "" {
			e += " (" + detail + ")"
		}
		inv[e] = true
	}
	insts, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped", "shutting-down"}},
	}})
	if err != nil {
		return err
	}
	for _, r := range insts.Reservations {
		for _, i := range r.Instances {
			add("instance", aws.ToString(i.InstanceId), "")
		}
	}
	keys, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	if err != nil {
		return err
	}
	for _, k := range keys.KeyPairs {
		add("key pair", aws.ToString(k.KeyName), "")
	}
	groups, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	if err != nil {
		return err
	}
	for _, g := range groups.SecurityGroups {
		add("security group", aws.ToString(g.GroupId), aws.ToString(g.GroupName))
	}
	imgs, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
	if err != nil {
		return err
	}
	for _, i := range imgs.Images {
		add("image", aws.ToString(i.ImageId), aws.ToString(i.Name))
	}
	snaps, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{Filters: []types.Filter{{Name: aws.String("owner-id"), Values: []string{Account}}}})
	if err != nil {
		return err
	}
	for _, sn := range snaps.Snapshots {
		add("snapshot", aws.ToString(sn.SnapshotId), "")
	}
	vols, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{})
	if err != nil {
		return err
	}
	for _, v := range vols.Volumes {
		add("volume", aws.ToString(v.VolumeId), "")
	}
	lts, err := c.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{})
	if err != nil {
		return err
	}
	for _, lt := range lts.LaunchTemplates {
		add("launch template", aws.ToString(lt.LaunchTemplateName), "")
	}
	fleets, err := c.DescribeFleets(ctx, &ec2.DescribeFleetsInput{})
	if err != nil {
		return err
	}
	for _, f := range fleets.Fleets {
		if !strings.HasPrefix(string(f.FleetState), "deleted") {
			add("fleet", aws.ToString(f.FleetId), string(f.FleetState))
		}
	}
	return nil
}

// Added lists what after has that inv has not, sorted.
func (inv Inventory) Added(after Inventory) []string {
	var out []string
	for e := range after {
		if !inv[e] {
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out
}

// Without returns inv without the entries that mention any of ids.
func (inv Inventory) Without(ids ...string) Inventory {
	out := Inventory{}
	for e := range inv {
		keep := true
		for _, id := range ids {
			if id != "" && strings.Contains(e, " "+id) {
				keep = false
				break
			}
		}
		if keep {
			out[e] = true
		}
	}
	return out
}
