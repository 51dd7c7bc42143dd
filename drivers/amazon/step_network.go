package amazon

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// stepNetwork finds where the instance goes: the subnet (given, or the one
// with the most free addresses among subnet_filter's matches, or in the VPC
// vpc_id or vpc_filter names), its VPC and zone. The build runs it only
// when one of those keywords is set; otherwise EC2 puts the instance and
// the temporary security group in the region's default VPC.
type stepNetwork struct{ b *build }

// Name implements step.Step.
func (st *stepNetwork) Name() string { return "network" }

// Run implements step.Step.
func (st *stepNetwork) Run(ctx context.Context) error {
	b := st.b
	c := b.cfg
	client := b.s.ec2(b.region)
	b.vpcID, b.az = c.VPCID, c.AvailabilityZone

	if len(c.VPCFilter) > 0 {
		out, err := client.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: filters(c.VPCFilter)})
		if err != nil {
			return fmt.Errorf("finding the VPC by vpc_filter: %w", explain(err))
		}
		switch len(out.Vpcs) {
		case 0:
			return fmt.Errorf("vpc_filter %v matches no VPC in %s", c.VPCFilter, b.region)
		case 1:
			b.vpcID = aws.ToString(out.Vpcs[0].VpcId)
		default:
			var ids []string
			for _, v := range out.Vpcs {
				ids = append(ids, aws.ToString(v.VpcId))
			}
			return fmt.Errorf("vpc_filter %v matches %d VPCs in %s (%v): narrow it so that one matches", c.VPCFilter, len(ids), b.region, ids)
		}
	}

	switch {
	case c.SubnetID != "":
		out, err := client.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{c.SubnetID}})
		if err != nil {
			if notFound(err) {
				return fmt.Errorf("subnet_id %s was not found in %s", c.SubnetID, b.region)
			}
			return fmt.Errorf("looking up subnet_id %s: %w", c.SubnetID, explain(err))
		}
		if len(out.Subnets) == 0 {
			return fmt.Errorf("subnet_id %s was not found in %s", c.SubnetID, b.region)
		}
		if err := b.useSubnet(out.Subnets[0]); err != nil {
			return err
		}
	case len(c.SubnetFilter) > 0 || b.vpcID != "":
		f := filters(c.SubnetFilter)
		if b.vpcID != "" {
			f = append(f, types.Filter{Name: aws.String("vpc-id"), Values: []string{b.vpcID}})
		}
		if b.az != "" {
			f = append(f, types.Filter{Name: aws.String("availability-zone"), Values: []string{b.az}})
		}
		f = append(f, types.Filter{Name: aws.String("state"), Values: []string{"available"}})
		out, err := client.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: f})
		if err != nil {
			return fmt.Errorf("finding a subnet: %w", explain(err))
		}
		if len(out.Subnets) == 0 {
			return fmt.Errorf("no available subnet in %s matches %s", b.region, describeFilters(f))
		}
		subnets := out.Subnets
		sort.SliceStable(subnets, func(i, j int) bool {
			return aws.ToInt32(subnets[i].AvailableIpAddressCount) > aws.ToInt32(subnets[j].AvailableIpAddressCount)
		})
		if err := b.useSubnet(subnets[0]); err != nil {
			return err
		}
	}
	return nil
}

func (b *build) useSubnet(s types.Subnet) error {
	b.subnetID = aws.ToString(s.SubnetId)
	if b.vpcID != "" && b.vpcID != aws.ToString(s.VpcId) {
		return fmt.Errorf("subnet %s is in VPC %s, not in %s", b.subnetID, aws.ToString(s.VpcId), b.vpcID)
	}
	if b.az != "" && b.az != aws.ToString(s.AvailabilityZone) {
		return fmt.Errorf("subnet %s is in %s, not in availability_zone %s", b.subnetID, aws.ToString(s.AvailabilityZone), b.az)
	}
	b.vpcID = aws.ToString(s.VpcId)
	b.az = aws.ToString(s.AvailabilityZone)
	b.ui.Say("subnet %s (%s, VPC %s, %d free addresses)", b.subnetID, b.az, b.vpcID, aws.ToInt32(s.AvailableIpAddressCount))
	return nil
}

func filters(m map[string]string) []types.Filter {
	var out []types.Filter
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, types.Filter{Name: aws.String(k), Values: []string{m[k]}})
	}
	return out
}

func describeFilters(f []types.Filter) string {
	m := map[string]string{}
	for _, x := range f {
		if len(x.Values) > 0 {
			m[aws.ToString(x.Name)] = x.Values[0]
		}
	}
	return fmt.Sprint(m)
}
