package amazon

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// launch is what the two ways of launching the build instance (on demand:
// stepRunInstance; spot: stepSpotInstance) share: what they read, and the
// instance they make. The steps after them point at it.
type launch struct {
	env    *buildEnv
	source imageSource  // the AMI to launch
	net    *stepNetwork // the subnet and zone; zero when it did not run
	key    *stepKeyPair
	group  *stepSecurityGroup
	// test says that this is the test machine, launched from the new AMI
	// for the build's tests: it is named so, takes the AMI's volumes as
	// they are (launch_block_device_mappings shaped the build instance,
	// whose volumes the AMI recorded) and terminates when it shuts down.
	test bool

	// output: the instance's id, once the launch call answered
	instanceID string
}

// imageSource is a step that found or made an AMI to launch: the source
// AMI for the build instance, the new AMI for the test machine.
type imageSource interface {
	launchImage() *types.Image
}

// instance describes the build instance once, as RunInstances takes it;
// the spot path turns it into a launch template (templateData). A keyword
// that shapes the instance is read here, and only here.
func (l *launch) instance() (*ec2.RunInstancesInput, error) {
	e, c := l.env, l.env.cfg
	userData, err := e.userData()
	if err != nil {
		return nil, err
	}
	subnet, az := l.net.subnetID, l.net.az
	image := l.source.launchImage()
	shutdown := types.ShutdownBehaviorStop
	if l.test {
		shutdown = types.ShutdownBehaviorTerminate
	}
	in := &ec2.RunInstancesInput{
		ImageId:      image.ImageId,
		InstanceType: types.InstanceType(c.InstanceType),
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		KeyName:      aws.String(l.key.keyName),
		UserData:     optional(userData),
		TagSpecifications: append(tagSpec(types.ResourceTypeInstance, e.instanceTags(l.test)),
			tagSpec(types.ResourceTypeVolume, c.RunTags, e.ownTags())...),
		InstanceInitiatedShutdownBehavior: shutdown,
	}
	if c.EBSOptimized {
		in.EbsOptimized = aws.Bool(true)
	}
	if c.AssociatePublicIPAddress != nil {
		in.NetworkInterfaces = []types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex:              aws.Int32(0),
			AssociatePublicIpAddress: c.AssociatePublicIPAddress,
			SubnetId:                 optional(subnet),
			Groups:                   l.group.groupIDs,
			DeleteOnTermination:      aws.Bool(true),
		}}
	} else {
		in.SubnetId = optional(subnet)
		in.SecurityGroupIds = l.group.groupIDs
	}
	if az != "" && subnet == "" {
		in.Placement = &types.Placement{AvailabilityZone: aws.String(az)}
	}
	if name, arn := e.instanceProfile(); name != nil || arn != nil {
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: name, Arn: arn}
	}
	if !l.test {
		for _, bd := range e.launchMappings(image) {
			in.BlockDeviceMappings = append(in.BlockDeviceMappings, bd.ec2Mapping())
		}
	}
	md := e.metadata()
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
	return in, nil
}

// templateData is the launch template of an instance described for
// RunInstances. What a fleet picks per offer (instance type, subnet,
// zone) is left out: the fleet's overrides hold it. A spot instance
// terminates when it shuts down, as it cannot be stopped.
func templateData(in *ec2.RunInstancesInput) *types.RequestLaunchTemplateData {
	data := &types.RequestLaunchTemplateData{
		ImageId:                           in.ImageId,
		KeyName:                           in.KeyName,
		UserData:                          in.UserData,
		SecurityGroupIds:                  in.SecurityGroupIds,
		EbsOptimized:                      in.EbsOptimized,
		InstanceInitiatedShutdownBehavior: types.ShutdownBehaviorTerminate,
	}
	for _, ts := range in.TagSpecifications {
		data.TagSpecifications = append(data.TagSpecifications, types.LaunchTemplateTagSpecificationRequest{ResourceType: ts.ResourceType, Tags: ts.Tags})
	}
	for _, ni := range in.NetworkInterfaces {
		data.NetworkInterfaces = append(data.NetworkInterfaces, types.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest{
			DeviceIndex:              ni.DeviceIndex,
			AssociatePublicIpAddress: ni.AssociatePublicIpAddress,
			Groups:                   ni.Groups,
			DeleteOnTermination:      ni.DeleteOnTermination,
		})
	}
	if p := in.IamInstanceProfile; p != nil {
		data.IamInstanceProfile = &types.LaunchTemplateIamInstanceProfileSpecificationRequest{Name: p.Name, Arn: p.Arn}
	}
	for _, m := range in.BlockDeviceMappings {
		data.BlockDeviceMappings = append(data.BlockDeviceMappings, templateMapping(m))
	}
	if md := in.MetadataOptions; md != nil {
		data.MetadataOptions = &types.LaunchTemplateInstanceMetadataOptionsRequest{
			HttpTokens:              types.LaunchTemplateHttpTokensState(md.HttpTokens),
			HttpEndpoint:            types.LaunchTemplateInstanceMetadataEndpointState(md.HttpEndpoint),
			HttpPutResponseHopLimit: md.HttpPutResponseHopLimit,
			InstanceMetadataTags:    types.LaunchTemplateInstanceMetadataTagsState(md.InstanceMetadataTags),
		}
	}
	return data
}

// What the two ways of launching take from the config.

// userData is the instance's user data, base64-encoded, or "".
func (e *buildEnv) userData() (string, error) {
	c := e.cfg
	data := []byte(c.UserData)
	if c.UserDataFile != "" {
		path := c.UserDataFile
		if !filepath.IsAbs(path) && e.job.Workspace != "" {
			path = filepath.Join(e.job.Workspace, path)
		}
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return "", fmt.Errorf("user_data_file: %w", err)
		}
	}
	if len(data) == 0 {
		return "", nil
	}
	if len(data) > 16<<10 {
		return "", fmt.Errorf("the user data is %d bytes; EC2 takes at most 16 KiB (compress it, or fetch the rest from it)", len(data))
	}
	return base64.StdEncoding.EncodeToString(data), nil
}

// launchMappings are the instance's block device mappings: the user's, with
// the root volume of source encrypted when encrypt_boot is set.
func (e *buildEnv) launchMappings(source *types.Image) []BlockDevice {
	list := append([]BlockDevice(nil), e.cfg.LaunchBlockDeviceMappings...)
	if !e.cfg.EncryptBoot || source == nil {
		return list
	}
	root := aws.ToString(source.RootDeviceName)
	key := e.cfg.KMSKeyID
	if key == "" {
		key = e.cfg.RegionKMSKeyIDs[e.region]
	}
	t := true
	for i := range list {
		if list[i].DeviceName == root {
			list[i].Encrypted = &t
			if key != "" {
				list[i].KMSKeyID = key
			}
			return list
		}
	}
	return append(list, BlockDevice{DeviceName: root, Encrypted: &t, KMSKeyID: key})
}

// ec2Mapping converts one mapping for RunInstances and CreateImage.
// Volumes of the build instance are deleted with it unless said otherwise.
func (bd BlockDevice) ec2Mapping() types.BlockDeviceMapping {
	m := types.BlockDeviceMapping{DeviceName: aws.String(bd.DeviceName)}
	switch {
	case bd.NoDevice:
		m.NoDevice = aws.String("")
		return m
	case bd.VirtualName != "":
		m.VirtualName = aws.String(bd.VirtualName)
		return m
	}
	ebs := &types.EbsBlockDevice{DeleteOnTermination: aws.Bool(true)}
	if bd.DeleteOnTermination != nil {
		ebs.DeleteOnTermination = bd.DeleteOnTermination
	}
	if bd.VolumeType != "" {
		ebs.VolumeType = types.VolumeType(bd.VolumeType)
	}
	if bd.VolumeSize > 0 {
		ebs.VolumeSize = aws.Int32(int32(bd.VolumeSize))
	}
	if bd.IOPS > 0 {
		ebs.Iops = aws.Int32(int32(bd.IOPS))
	}
	if bd.Throughput > 0 {
		ebs.Throughput = aws.Int32(int32(bd.Throughput))
	}
	ebs.Encrypted = bd.Encrypted
	ebs.KmsKeyId = optional(bd.KMSKeyID)
	ebs.SnapshotId = optional(bd.SnapshotID)
	m.Ebs = ebs
	return m
}

// templateMapping converts one mapping for a launch template.
func templateMapping(m types.BlockDeviceMapping) types.LaunchTemplateBlockDeviceMappingRequest {
	out := types.LaunchTemplateBlockDeviceMappingRequest{DeviceName: m.DeviceName, NoDevice: m.NoDevice, VirtualName: m.VirtualName}
	if e := m.Ebs; e != nil {
		out.Ebs = &types.LaunchTemplateEbsBlockDeviceRequest{
			DeleteOnTermination: e.DeleteOnTermination, Encrypted: e.Encrypted, Iops: e.Iops, KmsKeyId: e.KmsKeyId,
			SnapshotId: e.SnapshotId, Throughput: e.Throughput, VolumeSize: e.VolumeSize, VolumeType: e.VolumeType,
		}
	}
	return out
}

// metadata returns metadata_options with IMDSv2 required by default.
func (e *buildEnv) metadata() MetadataOptions {
	m := MetadataOptions{HTTPTokens: "required", HTTPEndpoint: "enabled"}
	if o := e.cfg.MetadataOptions; o != nil {
		if o.HTTPTokens != "" {
			m.HTTPTokens = o.HTTPTokens
		}
		if o.HTTPEndpoint != "" {
			m.HTTPEndpoint = o.HTTPEndpoint
		}
		m.HTTPPutResponseHops = o.HTTPPutResponseHops
		m.InstanceMetadataTags = o.InstanceMetadataTags
	}
	return m
}

// instanceProfile is iam_instance_profile as a name or an ARN.
func (e *buildEnv) instanceProfile() (name, arn *string) {
	p := e.cfg.IAMInstanceProfile
	switch {
	case p == "":
		return nil, nil
	case strings.HasPrefix(p, "arn:"):
		return nil, aws.String(p)
	}
	return aws.String(p), nil
}

// instanceTags are the build instance's tags, or the test machine's:
// run_tags, a Name unless run_tags has one, and imgbuild's own.
func (e *buildEnv) instanceTags(test bool) map[string]string {
	name := "imgbuild " + e.job.Name
	if test {
		name += " (tests)"
	}
	tags := map[string]string{"Name": name}
	for k, v := range e.cfg.RunTags {
		tags[k] = v
	}
	for k, v := range e.ownTags() {
		tags[k] = v
	}
	return tags
}

// terminate terminates the build's instances: ids when known, else those
// tagged with the build's token (for when the launch's answer was lost).
// It does not wait for them to be gone: the temporary security group's
// cleanup waits, by retrying its deletion, only when there is one.
func (e *buildEnv) terminate(ctx context.Context, ids []string) error {
	client := e.s.ec2(e.region)
	if len(ids) == 0 {
		out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{
			tokenFilter(e.token),
			{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped", "shutting-down"}},
		}})
		if err != nil {
			return fmt.Errorf("looking for the build's instances in %s: %w", e.region, explain(err))
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				ids = append(ids, aws.ToString(i.InstanceId))
			}
		}
		if len(ids) == 0 {
			return nil
		}
	}
	what := "instance " + strings.Join(ids, ", ")
	w := newWaiter(e.ui, e.cfg.WaitDelay, e.cfg.InstanceWaitTimeout, "instance_wait_timeout")
	// A new instance may not be visible yet (EC2 is eventually
	// consistent): a few NotFound answers are waited out.
	unseen := 0
	return w.wait(ctx, "terminating "+what, func(ctx context.Context) (status, error) {
		_, err := client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
		switch {
		case err == nil:
			e.ui.Say("terminated %s", what)
			return status{done: true, percent: -1}, nil
		case notFound(err) && unseen < 3:
			unseen++
			return status{state: "not visible yet", percent: -1}, nil
		case notFound(err):
			return status{done: true, percent: -1}, nil
		}
		return status{}, fmt.Errorf("terminating %s in %s: %w", what, e.region, explain(err))
	})
}

// leftover names the build instance for a list of what may be left.
func (l *launch) leftover() string {
	if l.instanceID != "" {
		return fmt.Sprintf("instance %s in %s", l.instanceID, l.env.region)
	}
	return fmt.Sprintf("instances tagged %s=%s in %s", TagToken, l.env.token, l.env.region)
}

// terminateInstance is the launch steps' cleanup: it terminates the
// instance, found by its tag if the launch's answer was lost.
func (l *launch) terminateInstance(ctx context.Context) error {
	var ids []string
	if l.instanceID != "" {
		ids = []string{l.instanceID}
	}
	return l.env.tidy(ctx, func(ctx context.Context) error { return l.env.terminate(ctx, ids) })
}
