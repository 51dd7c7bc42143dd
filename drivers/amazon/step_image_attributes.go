package amazon

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// stepImageAttributes sets, in every region the AMI is in, who may launch
// it (ami_users, ami_groups, ami_org_arns, ami_ou_arns), who may create
// volumes from its snapshots (snapshot_users, snapshot_groups) and when it
// is deprecated (deprecate_at).
type stepImageAttributes struct{ published }

// published is what the steps that publish the AMI read: the AMI and its
// copies.
type published struct {
	env    *buildEnv
	create *stepCreateImage // the AMI
	copies *stepCopyImages  // and its copies
}

// eachImage runs fn for the AMI in every region at once (eachRegion).
func (p *published) eachImage(ctx context.Context, fn func(client *ec2.Client, region string, m *madeImage) error) error {
	images := imagesMade(p.create, p.copies)
	return eachRegion(ctx, p.env.allRegions(), func(region string) error {
		return fn(p.env.s.ec2(region), region, images[region])
	})
}

// Name implements step.Step.
func (st *stepImageAttributes) Name() string { return "AMI attributes" }

// Run implements step.Step.
func (st *stepImageAttributes) Run(ctx context.Context) error {
	c := st.env.cfg
	var launch []types.LaunchPermission
	for _, u := range c.AMIUsers {
		launch = append(launch, types.LaunchPermission{UserId: aws.String(u)})
	}
	for range c.AMIGroups {
		launch = append(launch, types.LaunchPermission{Group: types.PermissionGroupAll})
	}
	for _, a := range c.AMIOrgARNs {
		launch = append(launch, types.LaunchPermission{OrganizationArn: aws.String(a)})
	}
	for _, a := range c.AMIOUARNs {
		launch = append(launch, types.LaunchPermission{OrganizationalUnitArn: aws.String(a)})
	}
	var deprecateAt time.Time
	if c.DeprecateAt != "" {
		var err error
		if deprecateAt, err = parseDeprecateAt(c.DeprecateAt, time.Now()); err != nil {
			return fmt.Errorf("deprecate_at: %w", err)
		}
	}
	return st.eachImage(ctx, func(client *ec2.Client, region string, m *madeImage) error {
		if len(launch) > 0 {
			if _, err := client.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
				ImageId:          aws.String(m.ID),
				LaunchPermission: &types.LaunchPermissionModifications{Add: launch},
			}); err != nil {
				return fmt.Errorf("setting who may launch %s in %s: %w", m.ID, region, explain(err))
			}
		}
		for _, s := range m.Snapshots {
			if len(c.SnapshotUsers)+len(c.SnapshotGroups) == 0 {
				break
			}
			// The OperationType form: AWS takes it as it takes
			// CreateVolumePermission.Add, and moto only the former.
			if _, err := client.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{
				SnapshotId:    aws.String(s),
				Attribute:     types.SnapshotAttributeNameCreateVolumePermission,
				OperationType: types.OperationTypeAdd,
				UserIds:       c.SnapshotUsers,
				GroupNames:    c.SnapshotGroups,
			}); err != nil {
				return fmt.Errorf("setting who may create volumes from snapshot %s in %s: %w", s, region, explain(err))
			}
		}
		if !deprecateAt.IsZero() {
			if _, err := client.EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{
				ImageId:     aws.String(m.ID),
				DeprecateAt: aws.Time(deprecateAt),
			}); err != nil {
				return fmt.Errorf("deprecating %s in %s at %s: %w", m.ID, region, deprecateAt.Format(time.RFC3339), explain(err))
			}
		}
		return nil
	})
}
