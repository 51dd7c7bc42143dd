package amazon

import (
	"context"
	"fmt"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// stepSecurityGroup makes a temporary security group that opens only the
// SSH port, to temporary_security_group_source_cidrs, unless
// security_group_ids names the groups to use.
type stepSecurityGroup struct {
	env  *buildEnv
	net  *stepNetwork // the VPC; "" for the default VPC
	test bool         // the test machine's: a group of its own (see tempName)

	// outputs
	groupIDs  []string // the instance's groups
	name      string   // the temporary group's
	id        string
	attempted bool // CreateSecurityGroup was called: the group may exist
}

// Name implements step.Step.
func (st *stepSecurityGroup) Name() string { return "security group" }

// Run implements step.Step.
func (st *stepSecurityGroup) Run(ctx context.Context) error {
	b := st.env
	c := b.cfg
	vpcID := st.net.vpcID
	if len(c.SecurityGroupIDs) > 0 {
		st.groupIDs = c.SecurityGroupIDs
		return nil
	}
	client := b.s.ec2(b.region)
	st.name = b.tempName(st.test)
	of := "build " + b.job.Name
	if st.test {
		of = "the tests of build " + b.job.Name
	}
	st.attempted = true
	out, err := client.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:         aws.String(st.name),
		Description:       aws.String(fmt.Sprintf("Temporary group of imgbuild %s: SSH only", of)),
		VpcId:             optional(vpcID),
		TagSpecifications: tagSpec(types.ResourceTypeSecurityGroup, c.RunTags, b.ownTags()),
	})
	if err != nil {
		if code := errorCode(err); code == "VPCIdNotSpecified" || code == "InvalidVpcID.NotFound" && vpcID == "" {
			return fmt.Errorf("creating the temporary security group %s: %s has no default VPC: set subnet_id, subnet_filter or vpc_id", st.name, b.region)
		}
		return fmt.Errorf("creating the temporary security group %s: %w", st.name, explain(err))
	}
	st.id = aws.ToString(out.GroupId)
	st.groupIDs = []string{st.id}

	perm := types.IpPermission{
		IpProtocol: aws.String("tcp"),
		FromPort:   aws.Int32(int32(c.SSH.Port)),
		ToPort:     aws.Int32(int32(c.SSH.Port)),
	}
	for _, cidr := range c.TemporarySGCIDRs {
		ip, _, _ := net.ParseCIDR(cidr)
		desc := aws.String("SSH for imgbuild build " + b.job.Name)
		if ip != nil && ip.To4() == nil {
			perm.Ipv6Ranges = append(perm.Ipv6Ranges, types.Ipv6Range{CidrIpv6: aws.String(cidr), Description: desc})
		} else {
			perm.IpRanges = append(perm.IpRanges, types.IpRange{CidrIp: aws.String(cidr), Description: desc})
		}
	}
	if _, err := client.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId:       aws.String(st.id),
		IpPermissions: []types.IpPermission{perm},
	}); err != nil {
		return fmt.Errorf("opening port %d of the temporary security group %s: %w", c.SSH.Port, st.id, explain(err))
	}
	b.ui.Say("temporary security group %s: port %d open to %v", st.id, c.SSH.Port, c.TemporarySGCIDRs)
	return nil
}

// Cleanup deletes the group, found by its name if its creation's answer was
// lost. The instance's cleanup ran first and terminated it; while AWS still
// counts it as using the group (until it is terminated), the deletion is
// tried again, within instance_wait_timeout.
func (st *stepSecurityGroup) Cleanup(ctx context.Context, failed bool) error {
	if !st.attempted {
		return nil
	}
	return st.env.tidy(ctx, st.deleteGroup)
}

func (st *stepSecurityGroup) deleteGroup(ctx context.Context) error {
	b := st.env
	client := b.s.ec2(b.region)
	id := st.id
	if id == "" {
		f := []types.Filter{{Name: aws.String("group-name"), Values: []string{st.name}}, tokenFilter(b.token)}
		out, err := client.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: f})
		if err != nil {
			return fmt.Errorf("looking for the temporary security group %s in %s: %w", st.name, b.region, explain(err))
		}
		if len(out.SecurityGroups) == 0 {
			return nil
		}
		id = aws.ToString(out.SecurityGroups[0].GroupId)
	}
	w := newWaiter(b.ui, b.cfg.WaitDelay, b.cfg.InstanceWaitTimeout, "instance_wait_timeout")
	return deleteGroupWhenFree(ctx, client, w, b.region, id)
}

// Leftovers implements step.Leaver: what the cleanup would remove.
func (st *stepSecurityGroup) Leftovers() []string {
	if !st.attempted {
		return nil
	}
	if st.id != "" {
		return []string{fmt.Sprintf("security group %s (%s) in %s", st.id, st.name, st.env.region)}
	}
	return []string{fmt.Sprintf("security group %s in %s", st.name, st.env.region)}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}
