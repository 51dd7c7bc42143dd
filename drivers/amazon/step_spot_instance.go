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
	b          *build
	template   string
	triedTmpl  bool // CreateLaunchTemplate was called
	triedFleet bool // CreateFleet was called: an instance may exist
	fleetID    string
}

// Name implements step.Step.
func (st *stepSpotInstance) Name() string { return "launch instance" }

// Run implements step.Step.
func (st *stepSpotInstance) Run(ctx context.Context) error {
	b := st.b
	c := b.cfg
	client := b.s.ec2(b.region)
	userData, err := b.userData()
	if err != nil {
		return err
	}
	data := &types.RequestLaunchTemplateData{
		ImageId:  b.source.ImageId,
		KeyName:  aws.String(b.keyName),
		UserData: optional(userData),
		TagSpecifications: []types.LaunchTemplateTagSpecificationRequest{
			{ResourceType: types.ResourceTypeInstance, Tags: ec2Tags(b.instanceTags())},
			{ResourceType: types.ResourceTypeVolume, Tags: ec2Tags(merge(c.RunTags, b.ownTags()))},
		},
		InstanceInitiatedShutdownBehavior: types.ShutdownBehaviorTerminate,
	}
	if c.AssociatePublicIPAddress != nil {
		data.NetworkInterfaces = []types.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest{{
			DeviceIndex:              aws.Int32(0),
			AssociatePublicIpAddress: c.AssociatePublicIPAddress,
			Groups:                   b.groupIDs,
			DeleteOnTermination:      aws.Bool(true),
		}}
	} else {
		data.SecurityGroupIds = b.groupIDs
	}
	if name, arn := b.instanceProfile(); name != nil || arn != nil {
		data.IamInstanceProfile = &types.LaunchTemplateIamInstanceProfileSpecificationRequest{Name: name, Arn: arn}
	}
	for _, bd := range b.launchMappings() {
		data.BlockDeviceMappings = append(data.BlockDeviceMappings, bd.templateMapping())
	}
	md := b.metadata()
	data.MetadataOptions = &types.LaunchTemplateInstanceMetadataOptionsRequest{
		HttpTokens:   types.LaunchTemplateHttpTokensState(md.HTTPTokens),
		HttpEndpoint: types.LaunchTemplateInstanceMetadataEndpointState(md.HTTPEndpoint),
	}
	if md.HTTPPutResponseHops > 0 {
		data.MetadataOptions.HttpPutResponseHopLimit = aws.Int32(int32(md.HTTPPutResponseHops))
	}
	if md.InstanceMetadataTags != "" {
		data.MetadataOptions.InstanceMetadataTags = types.LaunchTemplateInstanceMetadataTagsState(md.InstanceMetadataTags)
	}

	st.template = b.tempName()
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
		o := types.FleetLaunchTemplateOverridesRequest{InstanceType: types.InstanceType(t), SubnetId: optional(b.subnetID)}
		if b.subnetID == "" && b.az != "" {
			o.AvailabilityZone = aws.String(b.az)
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
			b.instanceID = i.InstanceIds[0]
			b.ui.Say("launched spot instance %s (%s) from %s through fleet %s", b.instanceID, i.InstanceType, aws.ToString(b.source.ImageId), st.fleetID)
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
	b := st.b
	client := b.s.ec2(b.region)
	var errs []error
	if st.triedFleet {
		var ids []string
		if b.instanceID != "" {
			ids = []string{b.instanceID}
		}
		if err := b.tidy(ctx, func(ctx context.Context) error { return b.terminate(ctx, ids) }); err != nil {
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
	b := st.b
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
	b := st.b
	var out []string
	if st.triedFleet {
		out = append(out, b.instanceLeftover())
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

func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
