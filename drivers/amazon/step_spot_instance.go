package amazon

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// stepSpotInstance launches the build instance as a spot instance through
// an instant EC2 fleet: a temporary launch template holds what RunInstances
// would take, and the fleet picks the cheapest capacity among instance_type
// and spot_instance_types (at most spot_price, or the on-demand price for
// "auto").
type stepSpotInstance struct {
	launch
	template   string
	triedTmpl  bool // CreateLaunchTemplate was called
	triedFleet bool // CreateFleet was called: an instance may exist
	fleetID    string
}

// Name implements step.Step.
func (st *stepSpotInstance) Name() string { return "launch instance" }

// Run implements step.Step.
func (st *stepSpotInstance) Run(ctx context.Context) error {
	b := st.env
	c := b.cfg
	client := b.s.ec2(b.region)
	in, err := st.instance()
	if err != nil {
		return err
	}
	data := templateData(in)
	subnet, az := st.net.subnetID, st.net.az

	st.template = b.tempName(false)
	st.triedTmpl = true
	if _, err := client.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(st.template),
		LaunchTemplateData: data,
		TagSpecifications:  tagSpec(types.ResourceTypeLaunchTemplate, c.RunTags, b.ownTags()),
	}); err != nil {
		return fmt.Errorf("creating the temporary launch template %s: %w", st.template, explain(err))
	}

	var overrides []types.FleetLaunchTemplateOverridesRequest
	for _, t := range append([]string{c.InstanceType}, c.SpotInstanceTypes...) {
		o := types.FleetLaunchTemplateOverridesRequest{InstanceType: types.InstanceType(t), SubnetId: optional(subnet)}
		if subnet == "" && az != "" {
			o.AvailabilityZone = aws.String(az)
		}
		if c.SpotPrice != "auto" {
			o.MaxPrice = aws.String(c.SpotPrice)
		}
		overrides = append(overrides, o)
	}
	st.triedFleet = true
	out, err := client.CreateFleet(ctx, &ec2.CreateFleetInput{
		Type: types.FleetTypeInstant,
		LaunchTemplateConfigs: []types.FleetLaunchTemplateConfigRequest{{
			LaunchTemplateSpecification: &types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateName: aws.String(st.template), Version: aws.String("$Latest")},
			Overrides:                   overrides,
		}},
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity:       aws.Int32(1),
			DefaultTargetCapacityType: types.DefaultTargetCapacityTypeSpot,
		},
		SpotOptions:       &types.SpotOptionsRequest{AllocationStrategy: types.SpotAllocationStrategyPriceCapacityOptimized},
		TagSpecifications: tagSpec(types.ResourceTypeFleet, c.RunTags, b.ownTags()),
	})
	if err != nil {
		return fmt.Errorf("requesting a spot instance (instant fleet): %w", explain(err))
	}
	st.fleetID = aws.ToString(out.FleetId)
	for _, i := range out.Instances {
		if len(i.InstanceIds) > 0 {
			st.instanceID = i.InstanceIds[0]
			b.ui.Say("launched spot instance %s (%s) from %s through fleet %s", st.instanceID, i.InstanceType, aws.ToString(in.ImageId), st.fleetID)
			return nil
		}
	}
	var why []string
	for _, e := range out.Errors {
		why = append(why, fmt.Sprintf("%s: %s", aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage)))
	}
	if len(why) == 0 {
		why = []string{"no reason given"}
	}
	return fmt.Errorf("no spot capacity for %v at %s in %s (%s): try spot_instance_types with more types, another zone, or on-demand (spot_price unset)",
		append([]string{c.InstanceType}, c.SpotInstanceTypes...), c.SpotPrice, b.region, strings.Join(why, "; "))
}

// Cleanup terminates the instance (found by its tag if the fleet's answer
// was lost), deletes the fleet and the launch template.
func (st *stepSpotInstance) Cleanup(ctx context.Context, failed bool) error {
	b := st.env
	client := b.s.ec2(b.region)
	var errs []error
	if st.triedFleet {
		if err := st.terminateInstance(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := b.tidy(ctx, func(ctx context.Context) error {
			ids := []string{st.fleetID}
			if st.fleetID == "" {
				var err error
				if ids, err = st.findFleets(ctx); err != nil || len(ids) == 0 {
					return err
				}
			}
			_, err := client.DeleteFleets(ctx, &ec2.DeleteFleetsInput{FleetIds: ids, TerminateInstances: aws.Bool(true)})
			if err != nil && !notFound(err) {
				return fmt.Errorf("deleting fleet %v in %s: %w", ids, b.region, explain(err))
			}
			return nil
		}); err != nil {
			errs = append(errs, err)
		}
	}
	if st.triedTmpl {
		if err := b.tidy(ctx, func(ctx context.Context) error {
			_, err := client.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: aws.String(st.template)})
			if err != nil && !notFound(err) && !strings.Contains(errorCode(err), "NotFound") {
				return fmt.Errorf("deleting the temporary launch template %s in %s: %w", st.template, b.region, explain(err))
			}
			return nil
		}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// findFleets finds the instant fleets tagged with the build's token, for
// when CreateFleet's answer was lost. DescribeFleets has no tag filter:
// the tags are compared here.
func (st *stepSpotInstance) findFleets(ctx context.Context) ([]string, error) {
	b := st.env
	var ids []string
	p := ec2.NewDescribeFleetsPaginator(b.s.ec2(b.region), &ec2.DescribeFleetsInput{Filters: []types.Filter{
		{Name: aws.String("type"), Values: []string{string(types.FleetTypeInstant)}},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("looking for the build's fleet in %s: %w", b.region, explain(err))
		}
		for _, f := range page.Fleets {
			if tags(f.Tags)[TagToken] == b.token && !strings.HasPrefix(string(f.FleetState), "deleted") {
				ids = append(ids, aws.ToString(f.FleetId))
			}
		}
	}
	return ids, nil
}

func tags(ts []types.Tag) map[string]string {
	out := map[string]string{}
	for _, t := range ts {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

// Leftovers implements step.Leaver: what the cleanup would remove.
func (st *stepSpotInstance) Leftovers() []string {
	b := st.env
	var out []string
	if st.triedFleet {
		out = append(out, st.leftover())
		if st.fleetID != "" {
			out = append(out, fmt.Sprintf("fleet %s in %s", st.fleetID, b.region))
		} else {
			out = append(out, fmt.Sprintf("fleets tagged %s=%s in %s", TagToken, b.token, b.region))
		}
	}
	if st.triedTmpl {
		out = append(out, fmt.Sprintf("launch template %s in %s", st.template, b.region))
	}
	return out
}
