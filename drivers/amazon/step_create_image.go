package amazon

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// stepCreateImage captures the stopped instance as the AMI (a spot
// instance, which cannot be stopped, is rebooted by EC2 first), tagged (and
// its snapshots tagged) as it is made, and waits for it to be available,
// showing its snapshots' progress. It makes the artifact: its cleanup,
// after the post-processors, removes the AMI and its snapshots only if the
// build failed.
type stepCreateImage struct {
	env      *buildEnv
	launch   *launch
	existing *stepPrevalidate // AMIs of the same name a cleanup must not take for this one

	// outputs
	attempted bool         // CreateImage was called: the AMI may exist
	made      *madeImage   // once its id is known; its snapshots once available
	image     *types.Image // once available: what the test machine launches
}

// launchImage implements imageSource: the test machine is launched from
// the new AMI.
func (st *stepCreateImage) launchImage() *types.Image { return st.image }

// Name implements step.Step.
func (st *stepCreateImage) Name() string { return "create AMI" }

// MakesArtifact implements step.Artifact.
func (st *stepCreateImage) MakesArtifact() bool { return true }

// Run implements step.Step.
func (st *stepCreateImage) Run(ctx context.Context) error {
	b := st.env
	c := b.cfg
	instanceID := st.launch.instanceID
	in := &ec2.CreateImageInput{
		InstanceId:  aws.String(instanceID),
		Name:        aws.String(c.AMIName),
		Description: optional(c.AMIDescription),
		// imgbuild's own tags until the build succeeds (see untag).
		TagSpecifications: append(tagSpec(types.ResourceTypeImage, c.Tags, b.ownTags()),
			tagSpec(types.ResourceTypeSnapshot, c.SnapshotTags, b.ownTags())...),
	}
	for _, bd := range c.AMIBlockDeviceMappings {
		in.BlockDeviceMappings = append(in.BlockDeviceMappings, bd.ec2Mapping())
	}
	st.attempted = true
	out, err := b.s.ec2(b.region).CreateImage(ctx, in)
	if err != nil {
		return fmt.Errorf("creating AMI %q from instance %s: %w", c.AMIName, instanceID, explain(err))
	}
	id := aws.ToString(out.ImageId)
	st.made = &madeImage{Region: b.region, ID: id}
	b.ui.Say("creating AMI %s (%s) from instance %s", id, c.AMIName, instanceID)
	img, err := b.waitImage(ctx, b.region, id, "AMI "+id+" to be available")
	if err != nil {
		return err
	}
	st.made.Snapshots = snapshotsOf(*img)
	st.image = img
	b.ui.Say("AMI %s is available in %s (snapshots %v)", id, b.region, st.made.Snapshots)
	return nil
}

// Cleanup removes the AMI and its snapshots if the build failed, and
// imgbuild's own tags from them if it succeeded.
func (st *stepCreateImage) Cleanup(ctx context.Context, failed bool) error {
	if !st.attempted {
		return nil
	}
	if !failed {
		st.env.untag(ctx, st.made)
		return nil
	}
	b := st.env
	return b.tidy(ctx, func(ctx context.Context) error {
		m, err := b.discardImage(ctx, b.region, st.made, st.existing.existing[b.region])
		st.made = m
		return err
	})
}

// Leftovers implements step.Leaver: what the cleanup would remove.
func (st *stepCreateImage) Leftovers() []string {
	if !st.attempted {
		return nil
	}
	return []string{st.env.imageLeftover(st.env.region, st.made)}
}
