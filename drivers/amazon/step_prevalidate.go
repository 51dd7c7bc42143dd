package amazon

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// stepPrevalidate checks, before anything is made, what would make the
// build fail later: that there are credentials, and that no AMI of the
// same name exists in any region the AMI goes to (unless force_deregister
// is to replace it).
type stepPrevalidate struct {
	env *buildEnv

	// outputs: the AMIs of the same name, per region, for force_deregister
	// to replace
	existing map[string][]types.Image
}

// Name implements step.Step.
func (st *stepPrevalidate) Name() string { return "pre-validate" }

// Run implements step.Step.
func (st *stepPrevalidate) Run(ctx context.Context) error {
	b := st.env
	st.existing = map[string][]types.Image{}
	if err := b.s.checkCredentials(ctx); err != nil {
		return err
	}
	if b.cfg.SkipCreateAMI {
		return nil
	}
	var mu sync.Mutex
	err := eachRegion(ctx, b.allRegions(), func(region string) error {
		imgs, err := b.imagesNamed(ctx, region, b.cfg.AMIName)
		if err != nil {
			return fmt.Errorf("looking for AMIs named %q in %s: %w", b.cfg.AMIName, region, err)
		}
		if len(imgs) > 0 {
			mu.Lock()
			st.existing[region] = imgs
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(st.existing) == 0 {
		return nil
	}
	var found []string
	for _, r := range b.allRegions() {
		for _, img := range st.existing[r] {
			found = append(found, fmt.Sprintf("%s in %s", aws.ToString(img.ImageId), r))
		}
	}
	if !b.cfg.ForceDeregister {
		return fmt.Errorf("an AMI named %q already exists (%s): choose another ami_name, or set force_deregister = True to replace it", b.cfg.AMIName, strings.Join(found, ", "))
	}
	b.ui.Say("force_deregister: %s will be replaced once the new AMI is ready to be made", strings.Join(found, ", "))
	return nil
}

// imagesNamed lists the account's AMIs named name in region.
func (b *buildEnv) imagesNamed(ctx context.Context, region, name string) ([]types.Image, error) {
	out, err := b.s.ec2(region).DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []types.Filter{{Name: aws.String("name"), Values: []string{name}}},
	})
	if err != nil {
		return nil, explain(err)
	}
	var imgs []types.Image
	for _, img := range out.Images {
		// A name filter takes wildcards; AMI names may hold none of
		// them, but compare anyway.
		if aws.ToString(img.Name) == name {
			imgs = append(imgs, img)
		}
	}
	return imgs, nil
}
