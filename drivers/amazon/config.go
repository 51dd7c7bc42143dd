package amazon

import (
	"fmt"
	"time"

	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
)

// Config is amazon_ebs()'s configuration: one declaration of every keyword,
// from which come the builtin's checks, its validation, its reference and
// the plan.
type Config struct {
	Region               string      `kw:"region,required" doc:"AWS region to build in (\"eu-west-1\")."`
	SkipRegionValidation bool        `kw:"skip_region_validation" doc:"Accept region names this version of imgbuild does not know (a region newer than it)."`
	Profile              string      `kw:"profile" doc:"Shared config profile to take credentials and settings from; \"\" means AWS_PROFILE, else \"default\"."`
	AssumeRole           *AssumeRole `kw:"assume_role" doc:"Role to assume with the credentials found: {\"role_arn\": ..., \"session_name\": ..., \"external_id\": ..., \"duration\": \"1h\"}."`

	SourceAMI    SourceAMI `kw:"source_ami,required" doc:"The AMI to start from: an id (\"ami-0abc...\"), another build's output (base.image_id) or aws_ami(...)."`
	InstanceType string    `kw:"instance_type,required" doc:"EC2 instance type to build on (\"t3.small\")."`
	EBSOptimized bool      `kw:"ebs_optimized" doc:"Launch the build instance EBS-optimized: bandwidth of its own to its volumes (most current instance types are, whatever this says)."`

	SubnetID                 string            `kw:"subnet_id" doc:"Subnet to launch in; \"\" means one found by subnet_filter, else the default VPC's choice."`
	SubnetFilter             map[string]string `kw:"subnet_filter" doc:"EC2 filters (name → value) that find the subnet to launch in; the match with the most free addresses is used."`
	VPCID                    string            `kw:"vpc_id" doc:"VPC of the temporary security group (and of the subnet, when a filter finds it); \"\" means the subnet's, else the default VPC."`
	VPCFilter                map[string]string `kw:"vpc_filter" doc:"EC2 filters (name → value) that find the VPC; exactly one must match."`
	AvailabilityZone         string            `kw:"availability_zone" doc:"Availability zone to launch in (\"eu-west-1a\"); \"\" means AWS's choice or the subnet's."`
	AssociatePublicIPAddress *bool             `kw:"associate_public_ip_address" doc:"Give the instance a public IP address (True) or not (False); unset means the subnet's default."`

	SecurityGroupIDs   []string `kw:"security_group_ids" doc:"Security groups of the instance; [] means a temporary group that opens only the SSH port to temporary_security_group_source_cidrs."`
	TemporarySGCIDRs   []string `kw:"temporary_security_group_source_cidrs" default:"[\"0.0.0.0/0\"]" doc:"Networks (CIDR) the temporary security group lets reach the SSH port."`
	IAMInstanceProfile string   `kw:"iam_instance_profile" doc:"Instance profile (name or ARN) the build instance runs with."`
	UserData           string   `kw:"user_data" doc:"User data for the instance (cloud-init), as text; it is base64-encoded for you."`
	UserDataFile       string   `kw:"user_data_file" path:"file" doc:"File holding the user data, relative to the workspace."`

	LaunchBlockDeviceMappings []BlockDevice    `kw:"launch_block_device_mappings" doc:"Volumes of the build instance: a list of dicts with device_name, volume_type, volume_size, iops, throughput, delete_on_termination, encrypted, kms_key_id, snapshot_id, virtual_name, no_device."`
	AMIBlockDeviceMappings    []BlockDevice    `kw:"ami_block_device_mappings" doc:"Volumes recorded in the AMI beyond the instance's (same dicts as launch_block_device_mappings)."`
	MetadataOptions           *MetadataOptions `kw:"metadata_options" doc:"Instance metadata service of the build instance: {\"http_tokens\": \"required\"|\"optional\", \"http_endpoint\": \"enabled\"|\"disabled\", \"http_put_response_hop_limit\": 1, \"instance_metadata_tags\": \"enabled\"|\"disabled\"}; IMDSv2 (tokens required) unless said otherwise."`

	RunTags      map[string]string `kw:"run_tags" doc:"Tags of the build instance and its volumes (and of the temporary key pair and security group)."`
	Tags         map[string]string `kw:"tags" doc:"Tags of the AMI, in every region."`
	SnapshotTags map[string]string `kw:"snapshot_tags" doc:"Tags of the AMI's snapshots, in every region."`

	AMIName             string            `kw:"ami_name" doc:"Name of the AMI: 3 to 128 letters, digits and ( ) [ ] space . / - ' @ _; required unless skip_create_ami."`
	AMIDescription      string            `kw:"ami_description" doc:"Description of the AMI."`
	AMIRegions          []string          `kw:"ami_regions" doc:"Other regions to copy the AMI to; the copies run in parallel and get their own ids."`
	RegionKMSKeyIDs     map[string]string `kw:"region_kms_key_ids" doc:"KMS key (id, ARN or alias) to encrypt the copy with, per region (region → key)."`
	EncryptBoot         bool              `kw:"encrypt_boot" doc:"Encrypt the AMI's boot volume (with kms_key_id, else the account's default EBS key), and its copies."`
	KMSKeyID            string            `kw:"kms_key_id" doc:"KMS key (id, ARN or alias) for encrypt_boot."`
	AMIUsers            []string          `kw:"ami_users" doc:"AWS account ids allowed to launch the AMI."`
	AMIGroups           []string          `kw:"ami_groups" doc:"Groups allowed to launch the AMI: only \"all\" (public)."`
	AMIOrgARNs          []string          `kw:"ami_org_arns" doc:"AWS Organizations (ARNs) allowed to launch the AMI."`
	AMIOUARNs           []string          `kw:"ami_ou_arns" doc:"Organizational units (ARNs) allowed to launch the AMI."`
	SnapshotUsers       []string          `kw:"snapshot_users" doc:"AWS account ids allowed to create volumes from the AMI's snapshots."`
	SnapshotGroups      []string          `kw:"snapshot_groups" doc:"Groups allowed to create volumes from the AMI's snapshots: only \"all\"."`
	ForceDeregister     bool              `kw:"force_deregister" doc:"Replace an AMI of the same name (in every region built to) instead of failing before anything is launched."`
	ForceDeleteSnapshot bool              `kw:"force_delete_snapshot" doc:"With force_deregister: delete the replaced AMI's snapshots too."`
	SkipCreateAMI       bool              `kw:"skip_create_ami" doc:"Provision, then terminate the instance without making an AMI (to test provisioning)."`
	DeprecateAt         string            `kw:"deprecate_at" doc:"When the AMI is deprecated, in every region: an RFC 3339 time (\"2027-01-01T00:00:00Z\") or a duration from the build's end (\"8760h\")."`

	SpotPrice         string   `kw:"spot_price" doc:"\"\" launches on demand; \"auto\" a spot instance at the market price (at most the on-demand price), through an instant fleet; a number (\"0.05\") a spot instance at most that many USD per hour."`
	SpotInstanceTypes []string `kw:"spot_instance_types" doc:"With spot_price: other instance types the fleet may pick if instance_type has no spot capacity."`

	SSHInterface   string      `kw:"ssh_interface" enum:"public_ip|private_ip|public_dns|private_dns" doc:"Which address of the instance to connect to; unset means the public IP when it has one, else the private IP. ssh_host overrides it."`
	SSHKeyPairName string      `kw:"ssh_keypair_name" doc:"An existing EC2 key pair to launch with (its private key in ssh_private_key_file or the agent) instead of a temporary one."`
	SSH            ssh.Options `kw:",squash"`

	InstanceWaitTimeout time.Duration `kw:"instance_wait_timeout" default:"15m" doc:"How long to wait for the instance to run, stop or terminate, and for its console to show its host keys."`
	AMIWaitTimeout      time.Duration `kw:"ami_wait_timeout" default:"2h" doc:"How long to wait for the AMI, and each copy, to become available."`
	WaitDelay           time.Duration `kw:"wait_delay" default:"2s" doc:"First delay between two polls of a waiter; it grows by half each poll, up to ten times this (30s at most unless this is more)."`
}

// AssumeRole is the assume_role option: a role to assume with the
// credentials the chain found, through STS.
type AssumeRole struct {
	RoleARN     string        `kw:"role_arn,required" doc:"ARN of the role to assume."`
	SessionName string        `kw:"session_name" doc:"Name of the role session; \"\" means imgbuild-<build>."`
	ExternalID  string        `kw:"external_id" doc:"External id the role's trust policy asks for."`
	Duration    time.Duration `kw:"duration" doc:"How long the role's credentials last; 0 means STS's default (1h). They are renewed as needed."`
}

// MetadataOptions is the metadata_options option: the instance metadata
// service of the build instance. Unset fields take the defaults that make
// IMDSv2 required.
type MetadataOptions struct {
	HTTPTokens           string `kw:"http_tokens" default:"required" enum:"required|optional" doc:"\"required\" (IMDSv2 only) or \"optional\" (IMDSv1 too)."`
	HTTPEndpoint         string `kw:"http_endpoint" default:"enabled" enum:"enabled|disabled" doc:"Whether the metadata service answers at all."`
	HTTPPutResponseHops  int    `kw:"http_put_response_hop_limit" doc:"Hop limit of IMDSv2 token responses (2 for containers); 0 means AWS's default (1)."`
	InstanceMetadataTags string `kw:"instance_metadata_tags" enum:"enabled|disabled" doc:"Whether the instance's tags are visible in its metadata."`
}

// BlockDevice is one entry of launch_block_device_mappings or
// ami_block_device_mappings.
type BlockDevice struct {
	DeviceName          string `kw:"device_name,required" doc:"Device the volume is attached as (\"/dev/xvda\", \"/dev/sdb\", \"xvdf\")."`
	VolumeType          string `kw:"volume_type" doc:"gp3, gp2, io2, io1, st1, sc1 or standard; \"\" means the snapshot's or AWS's default."`
	VolumeSize          int    `kw:"volume_size" doc:"Size in GiB; 0 means the snapshot's size."`
	IOPS                int    `kw:"iops" doc:"Provisioned IOPS (io1, io2, gp3)."`
	Throughput          int    `kw:"throughput" doc:"Throughput in MiB/s (gp3 only)."`
	DeleteOnTermination *bool  `kw:"delete_on_termination" doc:"Delete the volume when the instance terminates; unset means True."`
	Encrypted           *bool  `kw:"encrypted" doc:"Encrypt the volume; unset means the snapshot's or the account's default."`
	KMSKeyID            string `kw:"kms_key_id" doc:"KMS key to encrypt the volume with (needs encrypted = True)."`
	SnapshotID          string `kw:"snapshot_id" doc:"Snapshot to make the volume from (\"snap-0abc...\")."`
	VirtualName         string `kw:"virtual_name" doc:"An instance store volume (\"ephemeral0\") instead of an EBS one."`
	NoDevice            bool   `kw:"no_device" doc:"Remove this device from the AMI's mapping."`
}

// SourceAMI is source_ami: an AMI id, or an aws_ami(...) lookup resolved
// when the build runs. Another build's output (base.image_id) arrives as
// the id it resolved to.
type SourceAMI struct {
	// ID is the AMI id, when given as one.
	ID string
	// Lookup is the aws_ami(...) lookup, when given as one; Pos is where it
	// was written.
	Lookup *LookupConfig
	Pos    string
}

// TypeName is how the reference names source_ami's type.
func (s *SourceAMI) TypeName() string { return "string or aws_ami(...)" }

// DecodeValue implements schema.Decoder: it accepts an AMI id (a string) or
// an aws_ami(...) value.
func (s *SourceAMI) DecodeValue(v value.Value) error {
	switch v := v.(type) {
	case value.String:
		*s = SourceAMI{ID: v.S}
		return nil
	case *value.Object:
		if v.Kind != LookupName {
			return fmt.Errorf("got %s, want an AMI id (\"ami-0abc...\"), another build's image_id or %s(...)", v.Type(), LookupName)
		}
		lc := &LookupConfig{}
		if _, err := lookupSchema.Decode(&v.Fields, lc, schema.Options{Deferred: true}); err != nil {
			return fmt.Errorf("%s at %s: %v", LookupName, v.Pos, err)
		}
		*s = SourceAMI{Lookup: lc, Pos: v.Pos}
		return nil
	}
	return fmt.Errorf("got %s, want an AMI id (\"ami-0abc...\"), another build's image_id or %s(...)", v.Type(), LookupName)
}

// String describes the source as a message would name it.
func (s SourceAMI) String() string {
	if s.Lookup != nil {
		return s.Lookup.String()
	}
	return s.ID
}
