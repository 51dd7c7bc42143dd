package amazon

import (
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine/schema"
)

var (
	instanceType = regexp.MustCompile(`^[a-z0-9-]+\.[a-z0-9-]+$`)
	subnetID     = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)
	vpcID        = regexp.MustCompile(`^vpc-([0-9a-f]{8}|[0-9a-f]{17})$`)
	groupID      = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)
	snapshotID   = regexp.MustCompile(`^snap-([0-9a-f]{8}|[0-9a-f]{17})$`)
	accountID    = regexp.MustCompile(`^[0-9]{12}$`)
	orgARN       = regexp.MustCompile(`^arn:aws[a-z-]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$`)
	ouARN        = regexp.MustCompile(`^arn:aws[a-z-]*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$`)
	roleARN      = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$`)
	virtualName  = regexp.MustCompile(`^ephemeral([0-9]|1[0-9]|2[0-3])$`)
	spotPrice    = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
)

// Validate implements schema.Validator: everything that can be checked
// before anything runs, for the keywords whose values are known (those in
// deferred come from other builds and are checked when the build runs).
func (c *Config) Validate(deferred schema.Deferred) error {
	known := func(kw string) bool { return !deferred.Has(kw) }

	if known("region") {
		if err := checkRegion(c.Region, c.SkipRegionValidation); err != nil {
			return schema.Errorf("region", "%v", err)
		}
	}
	if c.AssumeRole != nil && known("assume_role") {
		if !roleARN.MatchString(c.AssumeRole.RoleARN) {
			return schema.Errorf("assume_role", "role_arn %q is not a role's ARN (\"arn:aws:iam::123456789012:role/name\")", c.AssumeRole.RoleARN)
		}
		if d := c.AssumeRole.Duration; d != 0 && (d < 15*time.Minute || d > 12*time.Hour) {
			return schema.Errorf("assume_role", "duration %s is outside what STS allows (15m to 12h)", d)
		}
	}
	if known("source_ami") {
		if c.SourceAMI.Lookup != nil {
			if err := c.SourceAMI.Lookup.validate(); err != nil {
				return schema.Errorf("source_ami", "%s(...) at %s: %v", LookupName, c.SourceAMI.Pos, err)
			}
			if r := c.SourceAMI.Lookup.Region; r != "" && known("region") && r != c.Region {
				return schema.Errorf("source_ami", "%s(...) at %s searches region %s, but the build runs in %s: an AMI id is only valid in its region; drop region from %s(...)", LookupName, c.SourceAMI.Pos, r, c.Region, LookupName)
			}
		} else if err := CheckAMIID(c.SourceAMI.ID); err != nil {
			return schema.Errorf("source_ami", "%v", err)
		}
	}
	if known("instance_type") && !instanceType.MatchString(c.InstanceType) {
		return schema.Errorf("instance_type", "%q is not an EC2 instance type: they read family.size, like \"t3.small\" or \"m7g.large\"", c.InstanceType)
	}
	for _, id := range []struct {
		kw, val, what, example string
		re                     *regexp.Regexp
	}{
		{"subnet_id", c.SubnetID, "subnet id", "subnet-0abc1234def567890", subnetID},
		{"vpc_id", c.VPCID, "VPC id", "vpc-0abc1234def567890", vpcID},
	} {
		if id.val != "" && known(id.kw) && !id.re.MatchString(id.val) {
			return schema.Errorf(id.kw, "%q is not a %s (like %q)", id.val, id.what, id.example)
		}
	}
	if c.SubnetID != "" && len(c.SubnetFilter) > 0 {
		return schema.Errorf("subnet_filter", "cannot be used with subnet_id: name the subnet or filter for it, not both")
	}
	if c.VPCID != "" && len(c.VPCFilter) > 0 {
		return schema.Errorf("vpc_filter", "cannot be used with vpc_id: name the VPC or filter for it, not both")
	}
	if c.AvailabilityZone != "" && known("availability_zone") && known("region") && !strings.HasPrefix(c.AvailabilityZone, c.Region) {
		return schema.Errorf("availability_zone", "%q is not a zone of region %s (zones read like %q)", c.AvailabilityZone, c.Region, c.Region+"a")
	}
	if known("security_group_ids") {
		for i, g := range c.SecurityGroupIDs {
			if !groupID.MatchString(g) {
				return schema.Errorf("security_group_ids", "element %d: %q is not a security group id (like \"sg-0abc1234def567890\")", i, g)
			}
		}
	}
	if known("temporary_security_group_source_cidrs") {
		if len(c.TemporarySGCIDRs) == 0 && len(c.SecurityGroupIDs) == 0 {
			return schema.Errorf("temporary_security_group_source_cidrs", "is empty, so the temporary security group would let nothing reach SSH: list networks (\"203.0.113.0/24\") or give security_group_ids")
		}
		for i, cidr := range c.TemporarySGCIDRs {
			if _, _, err := net.ParseCIDR(cidr); err != nil {
				return schema.Errorf("temporary_security_group_source_cidrs", "element %d: %q is not a network in CIDR form (\"203.0.113.0/24\")", i, cidr)
			}
		}
	}
	if c.UserData != "" && c.UserDataFile != "" {
		return schema.Errorf("user_data_file", "cannot be used with user_data: give the user data inline or in a file, not both")
	}
	for _, m := range []struct {
		kw   string
		list []BlockDevice
	}{{"launch_block_device_mappings", c.LaunchBlockDeviceMappings}, {"ami_block_device_mappings", c.AMIBlockDeviceMappings}} {
		if !known(m.kw) {
			continue
		}
		if err := checkBlockDevices(m.list); err != nil {
			return schema.Errorf(m.kw, "%v", err)
		}
	}
	if mo := c.MetadataOptions; mo != nil && known("metadata_options") {
		if mo.HTTPPutResponseHops < 0 || mo.HTTPPutResponseHops > 64 {
			return schema.Errorf("metadata_options", "http_put_response_hop_limit %d is outside 1 to 64", mo.HTTPPutResponseHops)
		}
	}
	for _, t := range []struct {
		kw   string
		tags map[string]string
	}{{"run_tags", c.RunTags}, {"tags", c.Tags}, {"snapshot_tags", c.SnapshotTags}} {
		if !known(t.kw) {
			continue
		}
		if err := checkTags(t.tags); err != nil {
			return schema.Errorf(t.kw, "%v", err)
		}
	}

	// The AMI.
	if c.SkipCreateAMI {
		for _, kw := range []string{"ami_regions", "ami_users", "ami_groups", "ami_org_arns", "ami_ou_arns", "snapshot_users", "snapshot_groups", "deprecate_at", "force_deregister", "encrypt_boot"} {
			if c.isSet(kw) {
				return schema.Errorf(kw, "has no effect with skip_create_ami = True: no AMI is made")
			}
		}
	} else if known("ami_name") {
		if c.AMIName == "" {
			return schema.Errorf("ami_name", "is required: name the AMI (%s), or set skip_create_ami = True to build without one", amiNameRuleText)
		}
		if err := CheckAMIName(c.AMIName); err != nil {
			return schema.Errorf("ami_name", "%v", err)
		}
	}
	if known("ami_description") && len(c.AMIDescription) > 255 {
		return schema.Errorf("ami_description", "is %d characters long; AWS takes at most 255", len(c.AMIDescription))
	}
	if known("ami_regions") {
		for i, r := range c.AMIRegions {
			if err := checkRegion(r, c.SkipRegionValidation); err != nil {
				return schema.Errorf("ami_regions", "element %d: %v", i, err)
			}
		}
	}
	if known("region_kms_key_ids") {
		for _, r := range slices.Sorted(maps.Keys(c.RegionKMSKeyIDs)) {
			if err := checkRegion(r, c.SkipRegionValidation); err != nil {
				return schema.Errorf("region_kms_key_ids", "key %q: %v", r, err)
			}
			if known("region") && known("ami_regions") && r != c.Region && !slices.Contains(c.AMIRegions, r) {
				return schema.Errorf("region_kms_key_ids", "names region %s, which is neither region nor in ami_regions: the AMI is not copied there", r)
			}
			if r == c.Region && !c.EncryptBoot {
				return schema.Errorf("region_kms_key_ids", "names the build's region %s, whose AMI is only encrypted with encrypt_boot = True", r)
			}
			if c.RegionKMSKeyIDs[r] == "" {
				return schema.Errorf("region_kms_key_ids", "the key for %s is empty", r)
			}
		}
	}
	if c.KMSKeyID != "" && !c.EncryptBoot {
		return schema.Errorf("kms_key_id", "is set but encrypt_boot is not: set encrypt_boot = True to encrypt the AMI with this key")
	}
	for _, l := range []struct {
		kw, what string
		list     []string
		pattern  *regexp.Regexp
	}{
		{"ami_users", "an AWS account id (12 digits)", c.AMIUsers, accountID},
		{"snapshot_users", "an AWS account id (12 digits)", c.SnapshotUsers, accountID},
		{"ami_org_arns", `an organization's ARN ("arn:aws:organizations::123456789012:organization/o-abcde12345")`, c.AMIOrgARNs, orgARN},
		{"ami_ou_arns", `an organizational unit's ARN ("arn:aws:organizations::123456789012:ou/o-abcde12345/ou-ab12-cdef3456")`, c.AMIOUARNs, ouARN},
	} {
		if !known(l.kw) {
			continue
		}
		for i, v := range l.list {
			if !l.pattern.MatchString(v) {
				return schema.Errorf(l.kw, "element %d: %q is not %s", i, v, l.what)
			}
		}
	}
	for _, g := range []struct {
		kw   string
		list []string
	}{{"ami_groups", c.AMIGroups}, {"snapshot_groups", c.SnapshotGroups}} {
		for i, v := range g.list {
			if known(g.kw) && v != "all" {
				return schema.Errorf(g.kw, "element %d: %q is not a group: the only group is \"all\" (everyone)", i, v)
			}
		}
	}
	if c.ForceDeleteSnapshot && !c.ForceDeregister {
		return schema.Errorf("force_delete_snapshot", "needs force_deregister = True: it deletes the snapshots of the AMI force_deregister replaces")
	}
	if c.DeprecateAt != "" && known("deprecate_at") {
		if _, err := parseDeprecateAt(c.DeprecateAt, time.Now()); err != nil {
			return schema.Errorf("deprecate_at", "%v", err)
		}
	}

	// Spot.
	if known("spot_price") && c.SpotPrice != "" && c.SpotPrice != "auto" {
		p, err := strconv.ParseFloat(c.SpotPrice, 64)
		if !spotPrice.MatchString(c.SpotPrice) || err != nil || p <= 0 {
			return schema.Errorf("spot_price", "%q is not a price: give \"auto\" or a maximum in USD per hour (\"0.05\"), or leave it unset for on-demand", c.SpotPrice)
		}
	}
	if len(c.SpotInstanceTypes) > 0 && c.SpotPrice == "" && known("spot_price") {
		return schema.Errorf("spot_instance_types", "is set but spot_price is not: the alternatives are for a spot fleet (spot_price = \"auto\")")
	}
	if known("spot_instance_types") {
		for i, t := range c.SpotInstanceTypes {
			if !instanceType.MatchString(t) {
				return schema.Errorf("spot_instance_types", "element %d: %q is not an EC2 instance type (like \"t3.small\")", i, t)
			}
		}
	}

	// Waiting.
	if c.WaitDelay <= 0 {
		return schema.Errorf("wait_delay", "must be more than 0")
	}
	if c.InstanceWaitTimeout <= 0 {
		return schema.Errorf("instance_wait_timeout", "must be more than 0")
	}
	if c.AMIWaitTimeout <= 0 {
		return schema.Errorf("ami_wait_timeout", "must be more than 0")
	}

	// SSH: the driver learns the address and the host key, and installs a
	// key of its own unless told to launch with an existing key pair.
	req := ssh.Require{}
	if c.SSHKeyPairName != "" {
		req.Credentials = true
		if c.SSH.PrivateKeyFile == "" && !c.SSH.AgentAuth && known("ssh_private_key_file") {
			return schema.Errorf("ssh_keypair_name", "needs the key pair's private key: set ssh_private_key_file or ssh_agent_auth = True")
		}
	}
	return c.SSH.Validate(deferred, req)
}

// isSet reports whether an AMI keyword holds a value.
func (c *Config) isSet(kw string) bool {
	switch kw {
	case "ami_regions":
		return len(c.AMIRegions) > 0
	case "ami_users":
		return len(c.AMIUsers) > 0
	case "ami_groups":
		return len(c.AMIGroups) > 0
	case "ami_org_arns":
		return len(c.AMIOrgARNs) > 0
	case "ami_ou_arns":
		return len(c.AMIOUARNs) > 0
	case "snapshot_users":
		return len(c.SnapshotUsers) > 0
	case "snapshot_groups":
		return len(c.SnapshotGroups) > 0
	case "deprecate_at":
		return c.DeprecateAt != ""
	case "force_deregister":
		return c.ForceDeregister
	case "encrypt_boot":
		return c.EncryptBoot
	}
	return false
}

// checkBlockDevices checks a block device mapping list.
func checkBlockDevices(list []BlockDevice) error {
	seen := map[string]int{}
	for i, bd := range list {
		where := fmt.Sprintf("element %d", i)
		if bd.DeviceName != "" {
			where += fmt.Sprintf(" (%s)", bd.DeviceName)
		}
		if err := bd.check(); err != nil {
			return fmt.Errorf("%s: %v", where, err)
		}
		if j, dup := seen[bd.DeviceName]; dup {
			return fmt.Errorf("%s: device_name %q is already mapped by element %d", where, bd.DeviceName, j)
		}
		seen[bd.DeviceName] = i
	}
	return nil
}

// volumeSizes are the sizes (GiB) each volume type takes.
var volumeSizes = map[string][2]int{
	"gp3": {1, 65536}, "gp2": {1, 16384}, "io2": {4, 65536}, "io1": {4, 16384},
	"st1": {125, 16384}, "sc1": {125, 16384}, "standard": {1, 1024},
}

// check checks one block device mapping.
func (bd *BlockDevice) check() error {
	if strings.TrimSpace(bd.DeviceName) == "" || strings.ContainsAny(bd.DeviceName, " \t\n") {
		return fmt.Errorf("device_name %q is not a device name (\"/dev/xvda\", \"/dev/sdb\", \"xvdf\")", bd.DeviceName)
	}
	ebs := bd.VolumeType != "" || bd.VolumeSize != 0 || bd.IOPS != 0 || bd.Throughput != 0 ||
		bd.DeleteOnTermination != nil || bd.Encrypted != nil || bd.KMSKeyID != "" || bd.SnapshotID != ""
	switch {
	case bd.NoDevice && (ebs || bd.VirtualName != ""):
		return fmt.Errorf("no_device = True removes the device: it cannot also have volume settings or virtual_name")
	case bd.VirtualName != "" && ebs:
		return fmt.Errorf("virtual_name %q names an instance store volume: it cannot also have EBS settings (volume_type, volume_size, ...)", bd.VirtualName)
	case bd.VirtualName != "" && !virtualName.MatchString(bd.VirtualName):
		return fmt.Errorf("virtual_name %q is not an instance store name (\"ephemeral0\" to \"ephemeral23\")", bd.VirtualName)
	}
	if bd.VolumeType != "" && !slices.Contains(VolumeTypes, bd.VolumeType) {
		msg := fmt.Sprintf("volume_type %q is not an EBS volume type", bd.VolumeType)
		if near := schema.Nearest(bd.VolumeType, VolumeTypes); near != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", near)
		}
		return fmt.Errorf("%s; use one of %s", msg, strings.Join(VolumeTypes, ", "))
	}
	if bd.VolumeSize < 0 {
		return fmt.Errorf("volume_size %d is negative", bd.VolumeSize)
	}
	if bd.VolumeSize > 0 {
		vt := bd.VolumeType
		if vt == "" {
			vt = "gp2"
		}
		r := volumeSizes[vt]
		if bd.VolumeSize < r[0] || bd.VolumeSize > r[1] {
			return fmt.Errorf("volume_size %d GiB is outside what %s volumes take (%d to %d GiB)", bd.VolumeSize, vt, r[0], r[1])
		}
	}
	switch {
	case bd.IOPS < 0:
		return fmt.Errorf("iops %d is negative", bd.IOPS)
	case bd.IOPS > 0 && bd.VolumeType != "io1" && bd.VolumeType != "io2" && bd.VolumeType != "gp3":
		return fmt.Errorf("iops is set but volume_type is %q: only io1, io2 and gp3 volumes take provisioned IOPS", bd.VolumeType)
	case bd.IOPS == 0 && (bd.VolumeType == "io1" || bd.VolumeType == "io2"):
		return fmt.Errorf("volume_type %q needs iops (the IOPS to provision)", bd.VolumeType)
	case bd.Throughput < 0:
		return fmt.Errorf("throughput %d is negative", bd.Throughput)
	case bd.Throughput > 0 && bd.VolumeType != "gp3":
		return fmt.Errorf("throughput is set but volume_type is %q: only gp3 volumes take a throughput", bd.VolumeType)
	case bd.Throughput > 0 && (bd.Throughput < 125 || bd.Throughput > 2000):
		return fmt.Errorf("throughput %d MiB/s is outside what gp3 takes (125 to 2000)", bd.Throughput)
	case bd.KMSKeyID != "" && (bd.Encrypted == nil || !*bd.Encrypted):
		return fmt.Errorf("kms_key_id is set but encrypted is not True: the key encrypts the volume")
	case bd.SnapshotID != "" && !snapshotID.MatchString(bd.SnapshotID):
		return fmt.Errorf("snapshot_id %q is not a snapshot id (like \"snap-0abc1234def567890\")", bd.SnapshotID)
	}
	return nil
}

// checkTags checks tags against AWS's limits.
func checkTags(tags map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		switch {
		case k == "":
			return fmt.Errorf("a tag key is empty")
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return fmt.Errorf("tag key %q starts with \"aws:\", which AWS keeps for itself", k)
		case len([]rune(k)) > 128:
			return fmt.Errorf("tag key %q is longer than 128 characters", k)
		case len([]rune(tags[k])) > 256:
			return fmt.Errorf("the value of tag %q is longer than 256 characters", k)
		}
	}
	if len(tags) > 40 {
		return fmt.Errorf("%d tags are more than the 40 this driver leaves room for (AWS takes 50 per resource, and imgbuild adds its own to temporary resources)", len(tags))
	}
	return nil
}

// parseDeprecateAt reads deprecate_at: an RFC 3339 time, or a duration
// counted from now.
func parseDeprecateAt(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%q is not after the build: give a positive duration (\"8760h\") or a time", s)
		}
		return now.Add(d).UTC().Truncate(time.Minute), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (\"2027-01-01T00:00:00Z\") nor a duration (\"8760h\")", s)
}
