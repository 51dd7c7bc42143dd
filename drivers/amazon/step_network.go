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
type stepNetwork struct {
	env *buildEnv

	// outputs
	vpcID, subnetID, az string
}

// Name implements step.Step.
func (st *stepNetwork) Name() string { return "network" }

// Run implements step.Step.
func (st *stepNetwork) Run(ctx context.Context) error {
	b := st.env
	c := b.cfg
	client := b.s.ec2(b.region)
	st.vpcID, st.az = c.VPCID, c.AvailabilityZone

	if len(c.VPCFilter) > 0 {
		out, err := client.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: filters(c.VPCFilter)})
		if err != nil {
			return fmt.Errorf("finding the VPC by vpc_filter: %w", explain(err))
		}
		switch len(out.Vpcs) {
		case 0:
			return fmt.Errorf("vpc_filter %v matches no VPC in %s", c.VPCFilter, b.region)
		case 1:
			st.vpcID = aws.ToString(out.Vpcs[0].VpcId)
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
		if err := st.useSubnet(out.Subnets[0]); err != nil {
			return err
		}
	case len(c.SubnetFilter) > 0 || st.vpcID != "":
		f := filters(c.SubnetFilter)
		if st.vpcID != "" {
			f = append(f, types.Filter{Name: aws.String("vpc-id"), Values: []string{st.vpcID}})
		}
		if st.az != "" {
			f = append(f, types.Filter{Name: aws.String("availability-zone"), Values: []string{st.az}})
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
		if err := st.useSubnet(subnets[0]); err != nil {
			return err
		}
	}
	return nil
}

func (st *stepNetwork) useSubnet(s types.Subnet) error {
	st.subnetID = aws.ToString(s.SubnetId)
	if st.vpcID != "" && st.vpcID != aws.ToString(s.VpcId) {
		return fmt.Errorf("subnet %s is in VPC %s, not in %s", st.subnetID, aws.ToString(s.VpcId), st.vpcID)
	}
	if st.az != "" && st.az != aws.ToString(s.AvailabilityZone) {
		return fmt.Errorf("subnet %s is in %s, not in availability_zone %s", st.subnetID, aws.ToString(s.AvailabilityZone), st.az)
	}
	st.vpcID = aws.ToString(s.VpcId)
	st.az = aws.ToString(s.AvailabilityZone)
	st.env.ui.Say("subnet %s (%s, VPC %s, %d free addresses)", st.subnetID, st.az, st.vpcID, aws.ToInt32(s.AvailableIpAddressCount))
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
