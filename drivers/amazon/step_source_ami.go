package amazon

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// stepSourceAMI finds the AMI to start from: resolves aws_ami(...) in the
// build's region, or checks that the AMI id given exists there and is
// available.
type stepSourceAMI struct {
	env *buildEnv

	// outputs
	image *types.Image
}

// Name implements step.Step.
func (st *stepSourceAMI) Name() string { return "source AMI" }

// launchImage implements imageSource.
func (st *stepSourceAMI) launchImage() *types.Image { return st.image }

// Run implements step.Step.
func (st *stepSourceAMI) Run(ctx context.Context) error {
	b := st.env
	src := b.cfg.SourceAMI
	if src.Lookup != nil {
		img, err := b.s.findImage(ctx, b.region, src.Lookup)
		if err != nil {
			return fmt.Errorf("source_ami (%s at %s): %w", LookupName, src.Pos, err)
		}
		st.image = img
		b.ui.Say("source AMI: %s (%s, created %s), found by %s", aws.ToString(img.ImageId), aws.ToString(img.Name), aws.ToString(img.CreationDate), src.Lookup)
		return nil
	}
	out, err := b.s.ec2(b.region).DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{src.ID}})
	if err != nil && !notFound(err) {
		return fmt.Errorf("looking up source_ami %s: %w", src.ID, explain(err))
	}
	if err != nil || len(out.Images) == 0 {
		return fmt.Errorf("source_ami %s was not found in %s: check the id and the region (an AMI has a different id in each region), and that this account may launch it", src.ID, b.region)
	}
	img := out.Images[0]
	if img.State != types.ImageStateAvailable {
		return fmt.Errorf("source_ami %s in %s is %s, not available: an instance cannot be launched from it", src.ID, b.region, img.State)
	}
	st.image = &img
	b.ui.Say("source AMI: %s (%s)", src.ID, aws.ToString(img.Name))
	return nil
}
