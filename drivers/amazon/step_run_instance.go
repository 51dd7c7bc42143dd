package amazon

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// stepRunInstance launches the build instance on demand, tagged with
// run_tags (and its volumes too).
type stepRunInstance struct {
	b         *build
	attempted bool // RunInstances was called: an instance may exist
}

// Name implements step.Step.
func (st *stepRunInstance) Name() string { return "launch instance" }

// Run implements step.Step.
func (st *stepRunInstance) Run(ctx context.Context) error {
	b := st.b
	c := b.cfg
	userData, err := b.userData()
	if err != nil {
		return err
	}
	in := &ec2.RunInstancesInput{
		ImageId:      b.source.ImageId,
		InstanceType: types.InstanceType(c.InstanceType),
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		KeyName:      aws.String(b.keyName),
		UserData:     optional(userData),
		TagSpecifications: append(tagSpec(types.ResourceTypeInstance, b.instanceTags()),
			tagSpec(types.ResourceTypeVolume, c.RunTags, b.ownTags())...),
		InstanceInitiatedShutdownBehavior: types.ShutdownBehaviorStop,
	}
	if c.AssociatePublicIPAddress != nil {
		in.NetworkInterfaces = []types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex:              aws.Int32(0),
			AssociatePublicIpAddress: c.AssociatePublicIPAddress,
			SubnetId:                 optional(b.subnetID),
			Groups:                   b.groupIDs,
			DeleteOnTermination:      aws.Bool(true),
		}}
	} else {
		in.SubnetId = optional(b.subnetID)
		in.SecurityGroupIds = b.groupIDs
	}
	if b.az != "" && b.subnetID == "" {
		in.Placement = &types.Placement{AvailabilityZone: aws.String(b.az)}
	}
	if name, arn := b.instanceProfile(); name != nil || arn != nil {
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: name, Arn: arn}
	}
	for _, bd := range b.launchMappings() {
		in.BlockDeviceMappings = append(in.BlockDeviceMappings, bd.ec2Mapping())
	}
	md := b.metadata()
	in.MetadataOptions = &types.InstanceMetadataOptionsRequest{
		HttpTokens:   types.HttpTokensState(md.HTTPTokens),
		HttpEndpoint: types.InstanceMetadataEndpointState(md.HTTPEndpoint),
	}
	if md.HTTPPutResponseHops > 0 {
		in.MetadataOptions.HttpPutResponseHopLimit = aws.Int32(int32(md.HTTPPutResponseHops))
	}
	if md.InstanceMetadataTags != "" {
		in.MetadataOptions.InstanceMetadataTags = types.InstanceMetadataTagsState(md.InstanceMetadataTags)
	}

	st.attempted = true
	out, err := b.s.ec2(b.region).RunInstances(ctx, in)
	if err != nil {
		return fmt.Errorf("launching a %s instance from %s: %w", c.InstanceType, aws.ToString(b.source.ImageId), explain(err))
	}
	if len(out.Instances) == 0 {
		return fmt.Errorf("RunInstances in %s launched no instance", b.region)
	}
	b.instanceID = aws.ToString(out.Instances[0].InstanceId)
	b.ui.Say("launched instance %s (%s) from %s", b.instanceID, c.InstanceType, aws.ToString(b.source.ImageId))
	return nil
}

// Cleanup always terminates the instance (found by its tag if the launch's
// answer was lost).
func (st *stepRunInstance) Cleanup(ctx context.Context, failed bool) error {
	if !st.attempted {
		return nil
	}
	var ids []string
	if st.b.instanceID != "" {
		ids = []string{st.b.instanceID}
	}
	return st.b.tidy(ctx, func(ctx context.Context) error { return st.b.terminate(ctx, ids) })
}

// Leftovers implements step.Leaver: what the cleanup would remove.
func (st *stepRunInstance) Leftovers() []string {
	if !st.attempted {
		return nil
	}
	return []string{st.b.instanceLeftover()}
}

// instanceLeftover names the build instance for a list of what may be
// left.
func (b *build) instanceLeftover() string {
	if b.instanceID != "" {
		return fmt.Sprintf("instance %s in %s", b.instanceID, b.region)
	}
	return fmt.Sprintf("instances tagged %s=%s in %s", TagToken, b.token, b.region)
}
