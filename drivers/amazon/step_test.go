package amazon

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/imgbuild/imgbuild/drivers/amazon/awstest"
	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
)

// These tests build and run single steps alone against moto: the build's
// environment, and literals of the earlier steps a step reads, are all it
// needs.

const aloneRegion = "eu-west-1"

// aloneEnv is the environment of one build named name, on the package's
// moto server.
func aloneEnv(t *testing.T, name string, cfg *Config) (*buildEnv, *ec2.Client) {
	t.Helper()
	moto := awstest.Start(t)
	d := New(Options{APIOptions: []func(*middleware.Stack) error{moto.Guard()}})
	cfg.Region = aloneRegion
	cfg.WaitDelay = 10 * time.Millisecond
	cfg.InstanceWaitTimeout = time.Minute
	ui := event.NewUI(nil, name, BuilderName)
	s, err := d.newSession(context.Background(), sessionConfig{Region: cfg.Region, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	token, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	e := &buildEnv{
		cfg: cfg, job: &engine.Job{Name: name, UI: ui}, ui: ui, s: s, region: cfg.Region, token: token,
		instanceWait: newWaiter(ui, cfg.WaitDelay, cfg.InstanceWaitTimeout, "instance_wait_timeout"),
		amiWait:      newWaiter(ui, cfg.WaitDelay, time.Minute, "ami_wait_timeout"),
	}
	return e, moto.EC2(aloneRegion)
}

func TestKeyPairAloneImportsTheBuildsKeyAndItsCleanupDeletesIt(t *testing.T) {
	e, client := aloneEnv(t, "alone-key", &Config{})
	s := &stepKeyPair{env: e}
	ctx := context.Background()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if s.keyName != "imgbuild-alone-key-"+e.token || s.key == nil {
		t.Fatalf("key pair %q, key %v", s.keyName, s.key)
	}
	out, err := client.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{s.keyName}})
	if err != nil || len(out.KeyPairs) != 1 {
		t.Fatalf("the key pair is not in moto: %v, %v", out, err)
	}
	if tags(out.KeyPairs[0].Tags)[TagToken] != e.token {
		t.Errorf("the key pair is not tagged with the build's token: %v", tags(out.KeyPairs[0].Tags))
	}
	if err := s.Cleanup(ctx, false); err != nil {
		t.Fatal(err)
	}
	if out, err := client.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{s.keyName}}); err == nil && len(out.KeyPairs) > 0 {
		t.Errorf("the key pair is still there after its cleanup")
	}
}

func TestSecurityGroupAloneOpensOnlyTheSSHPortInTheVPCItIsGiven(t *testing.T) {
	ctx := context.Background()
	e, client := aloneEnv(t, "alone-group", &Config{TemporarySGCIDRs: []string{"192.0.2.0/24"}, SSH: ssh.Options{Port: 2222}})
	vpc, err := client.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.42.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	vpcID := aws.ToString(vpc.Vpc.VpcId)
	defer client.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: vpc.Vpc.VpcId})

	s := &stepSecurityGroup{env: e, net: &stepNetwork{vpcID: vpcID}}
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := client.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: s.groupIDs})
	if err != nil || len(out.SecurityGroups) != 1 {
		t.Fatalf("groups %v: %v, %v", s.groupIDs, out, err)
	}
	g := out.SecurityGroups[0]
	if aws.ToString(g.VpcId) != vpcID {
		t.Errorf("the group is in %s, not in the VPC given, %s", aws.ToString(g.VpcId), vpcID)
	}
	if len(g.IpPermissions) != 1 || aws.ToInt32(g.IpPermissions[0].FromPort) != 2222 || aws.ToInt32(g.IpPermissions[0].ToPort) != 2222 ||
		len(g.IpPermissions[0].IpRanges) != 1 || aws.ToString(g.IpPermissions[0].IpRanges[0].CidrIp) != "192.0.2.0/24" {
		t.Errorf("ingress %+v, want port 2222 from 192.0.2.0/24 only", g.IpPermissions)
	}
	if err := s.Cleanup(ctx, true); err != nil {
		t.Fatal(err)
	}
	if out, err := client.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: s.groupIDs}); err == nil && len(out.SecurityGroups) > 0 {
		t.Errorf("the group is still there after its cleanup")
	}
}

// The spot path launches what the on-demand path would: one description
// of the instance, turned into a launch template.
func TestTheSpotTemplateDescribesTheInstanceTheOnDemandPathLaunches(t *testing.T) {
	public := true
	e := &buildEnv{
		cfg: &Config{
			InstanceType: "t3.small", EBSOptimized: true, AssociatePublicIPAddress: &public, IAMInstanceProfile: "builder",
			UserData: "#cloud-config\n", RunTags: map[string]string{"team": "platform"},
			LaunchBlockDeviceMappings: []BlockDevice{{DeviceName: "/dev/xvda", VolumeSize: 20, VolumeType: "gp3"}},
			MetadataOptions:           &MetadataOptions{HTTPPutResponseHops: 2},
		},
		job: &engine.Job{Name: "web"}, region: aloneRegion, token: "1f2e3d4c",
	}
	l := &launch{
		env:    e,
		source: &stepSourceAMI{image: &types.Image{ImageId: aws.String("ami-0abc"), RootDeviceName: aws.String("/dev/xvda")}},
		net:    &stepNetwork{subnetID: "subnet-1", az: "eu-west-1b"},
		key:    &stepKeyPair{keyName: "imgbuild-web-1f2e3d4c"},
		group:  &stepSecurityGroup{groupIDs: []string{"sg-1"}},
	}
	in, err := l.instance()
	if err != nil {
		t.Fatal(err)
	}
	data := templateData(in)
	if aws.ToString(data.ImageId) != "ami-0abc" || aws.ToString(data.KeyName) != "imgbuild-web-1f2e3d4c" || aws.ToString(data.UserData) != aws.ToString(in.UserData) {
		t.Errorf("image, key or user data lost: %+v", data)
	}
	if !aws.ToBool(in.EbsOptimized) || !aws.ToBool(data.EbsOptimized) {
		t.Errorf("ebs_optimized: on demand %v, spot %v; want both true", in.EbsOptimized, data.EbsOptimized)
	}
	if data.InstanceInitiatedShutdownBehavior != types.ShutdownBehaviorTerminate || in.InstanceInitiatedShutdownBehavior != types.ShutdownBehaviorStop {
		t.Errorf("shutdown behaviour: on demand %s, spot %s; want stop and terminate", in.InstanceInitiatedShutdownBehavior, data.InstanceInitiatedShutdownBehavior)
	}
	if len(data.NetworkInterfaces) != 1 || !aws.ToBool(data.NetworkInterfaces[0].AssociatePublicIpAddress) || !slices.Equal(data.NetworkInterfaces[0].Groups, []string{"sg-1"}) {
		t.Errorf("network interface %+v", data.NetworkInterfaces)
	}
	if aws.ToString(in.NetworkInterfaces[0].SubnetId) != "subnet-1" {
		t.Errorf("on demand, the interface is not in the subnet: %+v", in.NetworkInterfaces[0])
	}
	if data.IamInstanceProfile == nil || aws.ToString(data.IamInstanceProfile.Name) != "builder" {
		t.Errorf("instance profile %+v", data.IamInstanceProfile)
	}
	if len(data.BlockDeviceMappings) != 1 || aws.ToInt32(data.BlockDeviceMappings[0].Ebs.VolumeSize) != 20 || data.BlockDeviceMappings[0].Ebs.VolumeType != types.VolumeTypeGp3 {
		t.Errorf("block devices %+v", data.BlockDeviceMappings)
	}
	if md := data.MetadataOptions; md == nil || md.HttpTokens != types.LaunchTemplateHttpTokensStateRequired || aws.ToInt32(md.HttpPutResponseHopLimit) != 2 {
		t.Errorf("metadata options %+v", md)
	}
	if len(data.TagSpecifications) != 2 || data.TagSpecifications[0].ResourceType != types.ResourceTypeInstance ||
		tags(data.TagSpecifications[0].Tags)["team"] != "platform" || tags(data.TagSpecifications[1].Tags)[TagToken] != "1f2e3d4c" {
		t.Errorf("tag specifications %+v", data.TagSpecifications)
	}
}
