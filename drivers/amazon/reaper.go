package amazon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/imgbuild/imgbuild/engine/journal"
)

// JournalKind is the kind of the journal entry an amazon_ebs build records
// before it creates anything: every resource tagged with its token, in the
// build's region and the regions it copies to. Its reaper finds and
// removes what a killed build left there.
const JournalKind = "aws"

// record writes the build's journal entry (see JournalKind). Where holds
// how to reach the account again: region, profile and role, never
// credentials.
func (b *buildEnv) record() error {
	where := map[string]string{
		"token":   b.token,
		"region":  b.region,
		"regions": strings.Join(b.allRegions(), ","),
		"profile": b.cfg.Profile,
	}
	if ar := b.cfg.AssumeRole; ar != nil {
		where["role_arn"], where["external_id"], where["session_name"] = ar.RoleARN, ar.ExternalID, ar.SessionName
	}
	_, err := b.job.Record(JournalKind, fmt.Sprintf("AWS resources tagged %s=%s in %s", TagToken, b.token, strings.Join(b.allRegions(), ", ")), where)
	return err
}

// reaper removes what killed amazon_ebs builds left, by their token.
type reaper struct{ d *Driver }

// leftover is one resource found by a build's token.
type leftover struct {
	region, kind, id string
	snapshots        []string // of an image
	state            string   // of an instance or volume
}

func (l leftover) String() string {
	return fmt.Sprintf("%s %s in %s", l.kind, l.id, l.region)
}

// session reaches the account the entry's build used.
func (r reaper) session(ctx context.Context, e journal.Entry) (*session, error) {
	if e.Where["token"] == "" || e.Where["region"] == "" {
		return nil, fmt.Errorf("the journal entry has no token or region")
	}
	sc := sessionConfig{Region: e.Where["region"], Profile: e.Where["profile"], Name: e.Build}
	if arn := e.Where["role_arn"]; arn != "" {
		sc.AssumeRole = &AssumeRole{RoleARN: arn, ExternalID: e.Where["external_id"], SessionName: e.Where["session_name"]}
	}
	return r.d.newSession(ctx, sc)
}

// Find implements journal.Reaper.
func (r reaper) Find(ctx context.Context, e journal.Entry) ([]string, error) {
	s, err := r.session(ctx, e)
	if err != nil {
		return nil, err
	}
	left, err := findTagged(ctx, s, e)
	var out []string
	for _, l := range left {
		out = append(out, l.String())
	}
	return out, err
}

// Remove implements journal.Reaper: instances first (terminated, waited
// for), then what they held or were made from, then what they used.
func (r reaper) Remove(ctx context.Context, e journal.Entry) error {
	s, err := r.session(ctx, e)
	if err != nil {
		return err
	}
	left, err := findTagged(ctx, s, e)
	if err != nil {
		return err
	}
	var errs []error
	for _, region := range regionsOf(e) {
		errs = append(errs, removeIn(ctx, s.ec2(region), region, e.Where["token"], left))
	}
	return errors.Join(errs...)
}

func regionsOf(e journal.Entry) []string {
	if e.Where["regions"] == "" {
		return []string{e.Where["region"]}
	}
	return strings.Split(e.Where["regions"], ",")
}

// findTagged lists what carries the entry's token in its regions.
func findTagged(ctx context.Context, s *session, e journal.Entry) ([]leftover, error) {
	token := e.Where["token"]
	var out []leftover
	var errs []error
	for _, region := range regionsOf(e) {
		got, err := tagged(ctx, s.ec2(region), region, token)
		out = append(out, got...)
		if err != nil {
			errs = append(errs, fmt.Errorf("in %s: %w", region, explain(err)))
		}
	}
	return out, errors.Join(errs...)
}

// tagged lists the resources of one region tagged with token.
func tagged(ctx context.Context, c *ec2.Client, region, token string) ([]leftover, error) {
	f := []types.Filter{tokenFilter(token)}
	var out []leftover
	add := func(kind, id, state string) {
		out = append(out, leftover{region: region, kind: kind, id: id, state: state})
	}
	insts, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: append(f, types.Filter{
		Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped", "shutting-down"}})})
	if err != nil {
		return out, err
	}
	for _, r := range insts.Reservations {
		for _, i := range r.Instances {
			add("instance", aws.ToString(i.InstanceId), string(i.State.Name))
		}
	}
	fleets, err := c.DescribeFleets(ctx, &ec2.DescribeFleetsInput{})
	if err != nil {
		return out, err
	}
	for _, fl := range fleets.Fleets {
		if !strings.HasPrefix(string(fl.FleetState), "deleted") && hasTag(fl.Tags, TagToken, token) {
			add("fleet", aws.ToString(fl.FleetId), string(fl.FleetState))
		}
	}
	lts, err := c.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{Filters: f})
	if err != nil {
		return out, err
	}
	for _, lt := range lts.LaunchTemplates {
		add("launch template", aws.ToString(lt.LaunchTemplateId), "")
	}
	imgs, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: f})
	if err != nil {
		return out, err
	}
	for _, img := range imgs.Images {
		out = append(out, leftover{region: region, kind: "image", id: aws.ToString(img.ImageId), snapshots: snapshotsOf(img)})
	}
	snaps, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: f})
	if err != nil {
		return out, err
	}
	for _, sn := range snaps.Snapshots {
		add("snapshot", aws.ToString(sn.SnapshotId), "")
	}
	keys, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: f})
	if err != nil {
		return out, err
	}
	for _, k := range keys.KeyPairs {
		add("key pair", aws.ToString(k.KeyName), "")
	}
	groups, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: f})
	if err != nil {
		return out, err
	}
	for _, g := range groups.SecurityGroups {
		add("security group", aws.ToString(g.GroupId), "")
	}
	vols, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: f})
	if err != nil {
		return out, err
	}
	for _, v := range vols.Volumes {
		add("volume", aws.ToString(v.VolumeId), string(v.State))
	}
	return out, nil
}

func hasTag(tags []types.Tag, k, v string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == k && aws.ToString(t.Value) == v {
			return true
		}
	}
	return false
}

// reapWait bounds each wait of a removal (instances to terminate, a group
// still in use); reapKeyword says how to wait longer.
const (
	reapDelay   = 100 * time.Millisecond // the first wait between polls
	reapWait    = 10 * time.Minute
	reapKeyword = "the wait by running imgbuild cleanup again"
)

// removeIn removes what left holds in region, in dependency order.
func removeIn(ctx context.Context, c *ec2.Client, region, token string, left []leftover) error {
	byKind := map[string][]leftover{}
	for _, l := range left {
		if l.region == region {
			byKind[l.kind] = append(byKind[l.kind], l)
		}
	}
	fail := func(l leftover, err error) error {
		if err == nil || notFound(err) {
			return nil
		}
		return fmt.Errorf("removing %s: %w", l, explain(err))
	}
	var errs []error
	for _, l := range byKind["fleet"] {
		_, err := c.DeleteFleets(ctx, &ec2.DeleteFleetsInput{FleetIds: []string{l.id}, TerminateInstances: aws.Bool(true)})
		errs = append(errs, fail(l, err))
	}
	var ids []string
	for _, l := range byKind["instance"] {
		ids = append(ids, l.id)
	}
	if len(ids) > 0 {
		if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil && !notFound(err) {
			return fmt.Errorf("terminating instances %v in %s: %w", ids, region, explain(err))
		}
	}
	// The groups and volumes the instances hold are free once they are
	// terminated.
	if err := waitTerminated(ctx, c, region, token); err != nil {
		return err
	}
	for _, l := range byKind["launch template"] {
		_, err := c.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(l.id)})
		errs = append(errs, fail(l, err))
	}
	snaps := map[string]bool{}
	for _, l := range byKind["image"] {
		_, err := c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(l.id)})
		errs = append(errs, fail(l, err))
		for _, s := range l.snapshots {
			snaps[s] = true
		}
	}
	for _, l := range byKind["snapshot"] {
		snaps[l.id] = true
	}
	for s := range snaps {
		_, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(s)})
		errs = append(errs, fail(leftover{region: region, kind: "snapshot", id: s}, err))
	}
	for _, l := range byKind["key pair"] {
		_, err := c.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(l.id)})
		errs = append(errs, fail(l, err))
	}
	for _, l := range byKind["security group"] {
		errs = append(errs, deleteGroupWhenFree(ctx, c, newWaiter(nil, reapDelay, reapWait, reapKeyword), region, l.id))
	}
	for _, l := range byKind["volume"] {
		if l.state == string(types.VolumeStateInUse) {
			continue // attached to an instance just terminated: it goes with it, or is found again next time
		}
		_, err := c.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(l.id)})
		errs = append(errs, fail(l, err))
	}
	return errors.Join(errs...)
}

// waitTerminated waits until no instance tagged with token is left
// running, stopping or shutting down in region.
func waitTerminated(ctx context.Context, c *ec2.Client, region, token string) error {
	w := newWaiter(nil, reapDelay, reapWait, reapKeyword)
	return w.wait(ctx, "the instances in "+region+" to terminate", func(ctx context.Context) (status, error) {
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{tokenFilter(token), {
			Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped", "shutting-down"}}}})
		if err != nil {
			return status{}, explain(err)
		}
		for _, r := range out.Reservations {
			if len(r.Instances) > 0 {
				return status{state: "terminating", percent: -1}, nil
			}
		}
		return status{done: true, percent: -1}, nil
	})
}

// deleteGroupWhenFree deletes a security group, trying again with w while
// AWS still counts a terminated instance as using it. A group already gone
// is deleted.
func deleteGroupWhenFree(ctx context.Context, c *ec2.Client, w *waiter, region, id string) error {
	return w.wait(ctx, "deleting security group "+id, func(ctx context.Context) (status, error) {
		_, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
		switch {
		case err == nil || notFound(err):
			return status{done: true, percent: -1}, nil
		case errorCode(err) == "DependencyViolation":
			return status{state: "in use", percent: -1}, nil
		}
		return status{}, fmt.Errorf("deleting the temporary security group %s in %s: %w", id, region, explain(err))
	})
}
