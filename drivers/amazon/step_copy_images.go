package amazon

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// stepCopyImages copies the AMI to ami_regions, all at once, each copy
// tagged (with its snapshots) as it is made and encrypted with the
// region's key from region_kms_key_ids (or, with encrypt_boot, the
// region's default key). It makes part of the artifact: on failure its
// cleanup removes every copy made, in every region.
type stepCopyImages struct {
	env      *buildEnv
	create   *stepCreateImage // the AMI to copy
	existing *stepPrevalidate // AMIs of the same name a cleanup must not take for a copy

	// outputs
	mu        sync.Mutex
	attempted []string              // regions where CopyImage was called
	made      map[string]*madeImage // region → the copy, once its id is known
	done      map[string]*madeImage // region → the copy, once available
}

// Name implements step.Step.
func (st *stepCopyImages) Name() string { return "copy AMI" }

// MakesArtifact implements step.Artifact.
func (st *stepCopyImages) MakesArtifact() bool { return true }

// Run implements step.Step.
func (st *stepCopyImages) Run(ctx context.Context) error {
	b := st.env
	c := b.cfg
	src := st.create.made
	st.made, st.done = map[string]*madeImage{}, map[string]*madeImage{}
	return eachRegion(ctx, b.copyRegions(), func(region string) error {
		in := &ec2.CopyImageInput{
			SourceImageId: aws.String(src.ID),
			SourceRegion:  aws.String(b.region),
			Name:          aws.String(c.AMIName),
			Description:   optional(c.AMIDescription),
			// imgbuild's own tags until the build succeeds (see untag).
			TagSpecifications: append(tagSpec(types.ResourceTypeImage, c.Tags, b.ownTags()),
				tagSpec(types.ResourceTypeSnapshot, c.SnapshotTags, b.ownTags())...),
		}
		if key := c.RegionKMSKeyIDs[region]; key != "" {
			in.Encrypted, in.KmsKeyId = aws.Bool(true), aws.String(key)
		} else if c.EncryptBoot {
			in.Encrypted = aws.Bool(true)
		}
		st.mu.Lock()
		st.attempted = append(st.attempted, region)
		st.mu.Unlock()
		out, err := b.s.ec2(region).CopyImage(ctx, in)
		if err != nil {
			return fmt.Errorf("copying %s to %s: %w", src.ID, region, explain(err))
		}
		m := &madeImage{Region: region, ID: aws.ToString(out.ImageId)}
		st.mu.Lock()
		st.made[region] = m
		st.mu.Unlock()
		b.ui.Say("copying %s to %s as %s", src.ID, region, m.ID)
		img, err := b.waitImage(ctx, region, m.ID, "copy "+m.ID+" in "+region+" to be available")
		if err != nil {
			return err
		}
		m.Snapshots = snapshotsOf(*img)
		st.mu.Lock()
		st.done[region] = m
		st.mu.Unlock()
		b.ui.Say("copy %s is available in %s (snapshots %v)", m.ID, region, m.Snapshots)
		return nil
	})
}

// Cleanup removes every copy (found by name where CopyImage's answer was
// lost) and its snapshots, if the build failed, and imgbuild's own tags
// from the copies if it succeeded.
func (st *stepCopyImages) Cleanup(ctx context.Context, failed bool) error {
	if !failed {
		st.mu.Lock()
		done := make([]*madeImage, 0, len(st.done))
		for _, m := range st.done {
			done = append(done, m)
		}
		st.mu.Unlock()
		for _, m := range done {
			st.env.untag(ctx, m)
		}
		return nil
	}
	st.mu.Lock()
	regions := append([]string(nil), st.attempted...)
	st.mu.Unlock()
	return eachRegion(ctx, regions, func(region string) error {
		return st.env.tidy(ctx, func(ctx context.Context) error {
			st.mu.Lock()
			m := st.made[region]
			st.mu.Unlock()
			m, err := st.env.discardImage(ctx, region, m, st.existing.existing[region])
			st.mu.Lock()
			st.made[region] = m
			st.mu.Unlock()
			return err
		})
	})
}

// Leftovers implements step.Leaver: what the cleanup would remove.
func (st *stepCopyImages) Leftovers() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []string
	for _, r := range st.attempted {
		out = append(out, st.env.imageLeftover(r, st.made[r]))
	}
	return out
}

// available are the copies made and available: region → copy.
func (st *stepCopyImages) available() map[string]*madeImage {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := map[string]*madeImage{}
	for r, m := range st.done {
		out[r] = m
	}
	return out
}
