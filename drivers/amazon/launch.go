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

// What both ways of launching (RunInstances, an instant spot fleet) take
// from the config.

// userData is the instance's user data, base64-encoded, or "".
func (b *build) userData() (string, error) {
	c := b.cfg
	data := []byte(c.UserData)
	if c.UserDataFile != "" {
		path := c.UserDataFile
		if !filepath.IsAbs(path) && b.job.Workspace != "" {
			path = filepath.Join(b.job.Workspace, path)
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
// the root volume encrypted when encrypt_boot is set.
func (b *build) launchMappings() []BlockDevice {
	list := append([]BlockDevice(nil), b.cfg.LaunchBlockDeviceMappings...)
	if !b.cfg.EncryptBoot || b.source == nil {
		return list
	}
	root := aws.ToString(b.source.RootDeviceName)
	key := b.cfg.KMSKeyID
	if key == "" {
		key = b.cfg.RegionKMSKeyIDs[b.region]
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
func (bd BlockDevice) templateMapping() types.LaunchTemplateBlockDeviceMappingRequest {
	m := bd.ec2Mapping()
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
func (b *build) metadata() MetadataOptions {
	m := MetadataOptions{HTTPTokens: "required", HTTPEndpoint: "enabled"}
	if o := b.cfg.MetadataOptions; o != nil {
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
func (b *build) instanceProfile() (name, arn *string) {
	p := b.cfg.IAMInstanceProfile
	switch {
	case p == "":
		return nil, nil
	case strings.HasPrefix(p, "arn:"):
		return nil, aws.String(p)
	}
	return aws.String(p), nil
}

// instanceTags are the build instance's tags: run_tags, a Name unless
// run_tags has one, and imgbuild's own.
func (b *build) instanceTags() map[string]string {
	tags := map[string]string{"Name": "imgbuild " + b.job.Name}
	for k, v := range b.cfg.RunTags {
		tags[k] = v
	}
	for k, v := range b.ownTags() {
		tags[k] = v
	}
	return tags
}

// terminate terminates the build's instances: ids when known, else those
// tagged with the build's token (for when the launch's answer was lost).
// It does not wait for them to be gone: the temporary security group's
// cleanup waits, by retrying its deletion, only when there is one.
func (b *build) terminate(ctx context.Context, ids []string) error {
	client := b.s.ec2(b.region)
	if len(ids) == 0 {
		out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{
			tokenFilter(b.token),
			{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped", "shutting-down"}},
		}})
		if err != nil {
			return fmt.Errorf("looking for the build's instances in %s: %w", b.region, explain(err))
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
	w := newWaiter(b.ui, b.cfg.WaitDelay, b.cfg.InstanceWaitTimeout, "instance_wait_timeout")
	// A new instance may not be visible yet (EC2 is eventually
	// consistent): a few NotFound answers are waited out.
	unseen := 0
	return w.wait(ctx, "terminating "+what, func(ctx context.Context) (status, error) {
		_, err := client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
		switch {
		case err == nil:
			b.ui.Say("terminated %s", what)
			return status{done: true, percent: -1}, nil
		case notFound(err) && unseen < 3:
			unseen++
			return status{state: "not visible yet", percent: -1}, nil
		case notFound(err):
			return status{done: true, percent: -1}, nil
		}
		return status{}, fmt.Errorf("terminating %s in %s: %w", what, b.region, explain(err))
	})
}
