package amazon

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TagTested is the tag a build with tests puts on its AMI, in every
// region, once every test passed: its value is when they passed (RFC 3339,
// UTC). An AMI without it was not tested by imgbuild.
const TagTested = "tested"

// stepTagTested tags the AMI and its copies tested, the last step of
// publishing: it runs only after every test passed, and after the copies
// and permissions.
type stepTagTested struct{ published }

// Name implements step.Step.
func (st *stepTagTested) Name() string { return "tag tested" }

// Run implements step.Step.
func (st *stepTagTested) Run(ctx context.Context) error {
	when := time.Now().UTC().Format(time.RFC3339)
	return st.eachImage(ctx, func(client *ec2.Client, region string, m *madeImage) error {
		if _, err := client.CreateTags(ctx, &ec2.CreateTagsInput{
			Resources: []string{m.ID},
			Tags:      []types.Tag{{Key: aws.String(TagTested), Value: aws.String(when)}},
		}); err != nil {
			return fmt.Errorf("tagging %s in %s %s=%s after its tests passed: %w", m.ID, region, TagTested, when, explain(err))
		}
		st.env.ui.Say("tagged %s in %s %s=%s", m.ID, region, TagTested, when)
		return nil
	})
}
