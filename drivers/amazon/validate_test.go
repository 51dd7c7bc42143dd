package amazon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/amazon"
	"github.com/imgbuild/imgbuild/drivers/local"
	"github.com/imgbuild/imgbuild/drivers/post"
	"github.com/imgbuild/imgbuild/drivers/provision"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/starlark/description"
)

// evaluate loads a description with the amazon driver, without AWS.
func evaluate(t *testing.T, src string) error {
	t.Helper()
	reg := engine.NewRegistry()
	local.Register(reg)
	provision.Register(reg)
	post.Register(reg)
	amazon.Register(reg)
	root := t.TempDir()
	file := filepath.Join(root, "images.star")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := description.Load(description.Options{File: file, Registry: reg})
	return err
}

// build is an amazon_ebs call with every required keyword, then extra.
func build(extra string) string {
	return `amazon_ebs(name = "web", region = "eu-west-1", source_ami = "ami-0abcdef1234567890", instance_type = "t3.small", ami_name = "web-1"` + extra + ")\n"
}

func TestBadInputIsRefusedWhenTheDescriptionIsEvaluated(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"unknown region", strings.Replace(build(""), `"eu-west-1"`, `"eu-wset-1"`, 1),
			`images.star:1:26: amazon_ebs: for parameter region: unknown region "eu-wset-1" (did you mean "eu-west-1"?); if it is a region newer than this imgbuild, set skip_region_validation = True`},
		{"unknown copy region", build(`, ami_regions = ["us-east-1", "us-esat-2"]`),
			`amazon_ebs: for parameter ami_regions: element 1: unknown region "us-esat-2" (did you mean "us-east-2"?); if it is a region newer than this imgbuild, set skip_region_validation = True`},
		{"malformed AMI id", strings.Replace(build(""), "ami-0abcdef1234567890", "ami-12345", 1),
			`amazon_ebs: for parameter source_ami: "ami-12345" is not an AMI id: AMI ids read "ami-" and 8 or 17 hexadecimal digits, like "ami-0abcdef1234567890"`},
		{"AMI name instead of id", strings.Replace(build(""), "ami-0abcdef1234567890", "debian-12-amd64", 1),
			`amazon_ebs: for parameter source_ami: "debian-12-amd64" is not an AMI id: AMI ids read "ami-" and 8 or 17 hexadecimal digits, like "ami-0abcdef1234567890"; to find an AMI by its name, use aws_ami(owners = [...], name = "debian-12-amd64")`},
		{"uppercase AMI id", strings.Replace(build(""), "ami-0abcdef1234567890", "ami-0ABCDEF1234567890", 1),
			`amazon_ebs: for parameter source_ami: "ami-0ABCDEF1234567890" is not an AMI id: AMI ids are lowercase ("ami-0abcdef1234567890")`},
		{"ami_name breaking AWS's rules", strings.Replace(build(""), `"web-1"`, `"web:1.0 #nightly"`, 1),
			`amazon_ebs: for parameter ami_name: "web:1.0 #nightly" breaks AWS's rules for AMI names: ':', '#' are not allowed; use 3 to 128 letters, digits and ( ) [ ] space . / - ' @ _ (such as "web-1.0 -nightly")`},
		{"ami_name too short", strings.Replace(build(""), `"web-1"`, `"w"`, 1),
			`amazon_ebs: for parameter ami_name: "w" breaks AWS's rules for AMI names: it is 1 characters long, fewer than 3; use 3 to 128 letters, digits and ( ) [ ] space . / - ' @ _`},
		{"ami_name too long", strings.Replace(build(""), `"web-1"`, `"`+strings.Repeat("a", 129)+`"`, 1),
			`amazon_ebs: for parameter ami_name: "` + strings.Repeat("a", 129) + `" breaks AWS's rules for AMI names: it is 129 characters long, more than 128; use 3 to 128 letters, digits and ( ) [ ] space . / - ' @ _ (such as "` + strings.Repeat("a", 128) + `")`},
		{"unknown volume type", build(`, launch_block_device_mappings = [{"device_name": "/dev/xvda", "volume_type": "gp9", "volume_size": 20}]`),
			`amazon_ebs: for parameter launch_block_device_mappings: element 0 (/dev/xvda): volume_type "gp9" is not an EBS volume type (did you mean "gp3"?); use one of gp3, gp2, io2, io1, st1, sc1, standard`},
		{"unknown volume type in the AMI's mappings", build(`, ami_block_device_mappings = [{"device_name": "/dev/sdb", "volume_type": "ssd"}]`),
			`amazon_ebs: for parameter ami_block_device_mappings: element 0 (/dev/sdb): volume_type "ssd" is not an EBS volume type; use one of gp3, gp2, io2, io1, st1, sc1, standard`},
		{"misspelt mapping keyword", build(`, launch_block_device_mappings = [{"device_name": "/dev/xvda", "volume_tpye": "gp3"}]`),
			`amazon_ebs: for parameter launch_block_device_mappings: element 0: unexpected keyword argument "volume_tpye" (did you mean "volume_type"?)`},
		{"io1 without iops", build(`, launch_block_device_mappings = [{"device_name": "/dev/xvda", "volume_type": "io1", "volume_size": 100}]`),
			`amazon_ebs: for parameter launch_block_device_mappings: element 0 (/dev/xvda): volume_type "io1" needs iops (the IOPS to provision)`},
		{"size out of range", build(`, launch_block_device_mappings = [{"device_name": "/dev/xvda", "volume_type": "st1", "volume_size": 20}]`),
			`amazon_ebs: for parameter launch_block_device_mappings: element 0 (/dev/xvda): volume_size 20 GiB is outside what st1 volumes take (125 to 16384 GiB)`},
		{"device mapped twice", build(`, launch_block_device_mappings = [{"device_name": "/dev/xvda"}, {"device_name": "/dev/xvda", "volume_size": 8}]`),
			`amazon_ebs: for parameter launch_block_device_mappings: element 1 (/dev/xvda): device_name "/dev/xvda" is already mapped by element 0`},
		{"no ami_name", strings.Replace(build(""), `, ami_name = "web-1"`, "", 1),
			`amazon_ebs: for parameter ami_name: is required: name the AMI (3 to 128 letters, digits and ( ) [ ] space . / - ' @ _), or set skip_create_ami = True to build without one`},
		{"bad instance type", strings.Replace(build(""), "t3.small", "t3-small", 1),
			`amazon_ebs: for parameter instance_type: "t3-small" is not an EC2 instance type: they read family.size, like "t3.small" or "m7g.large"`},
		{"bad account id", build(`, ami_users = ["12345"]`),
			`amazon_ebs: for parameter ami_users: element 0: "12345" is not an AWS account id (12 digits)`},
		{"bad group", build(`, ami_groups = ["public"]`),
			`amazon_ebs: for parameter ami_groups: element 0: "public" is not a group: the only group is "all" (everyone)`},
		{"bad spot price", build(`, spot_price = "cheap"`),
			`amazon_ebs: for parameter spot_price: "cheap" is not a price: give "auto" or a maximum in USD per hour ("0.05"), or leave it unset for on-demand`},
		{"bad deprecate_at", build(`, deprecate_at = "next year"`),
			`amazon_ebs: for parameter deprecate_at: "next year" is neither an RFC 3339 time ("2027-01-01T00:00:00Z") nor a duration ("8760h")`},
		{"kms key without encrypt_boot", build(`, kms_key_id = "alias/images"`),
			`amazon_ebs: for parameter kms_key_id: is set but encrypt_boot is not: set encrypt_boot = True to encrypt the AMI with this key`},
		{"region key for a region not built to", build(`, region_kms_key_ids = {"us-east-1": "alias/images"}`),
			`amazon_ebs: for parameter region_kms_key_ids: names region us-east-1, which is neither region nor in ami_regions: the AMI is not copied there`},
		{"force_delete_snapshot alone", build(`, force_delete_snapshot = True`),
			`amazon_ebs: for parameter force_delete_snapshot: needs force_deregister = True: it deletes the snapshots of the AMI force_deregister replaces`},
		{"reserved tag", build(`, tags = {"aws:owner": "me"}`),
			`amazon_ebs: for parameter tags: tag key "aws:owner" starts with "aws:", which AWS keeps for itself`},
		{"bad CIDR", build(`, temporary_security_group_source_cidrs = ["10.0.0.0/33"]`),
			`amazon_ebs: for parameter temporary_security_group_source_cidrs: element 0: "10.0.0.0/33" is not a network in CIDR form ("203.0.113.0/24")`},
		{"ssh interface", build(`, ssh_interface = "public"`),
			`amazon_ebs: for parameter ssh_interface: "public" is not one of "public_ip", "private_ip", "public_dns", "private_dns"`},
		{"lookup without owners", strings.Replace(build(""), `"ami-0abcdef1234567890"`, `aws_ami(name = "debian-12-*")`, 1),
			`aws_ami: missing required keyword argument "owners"`},
		{"lookup with a bad owner", strings.Replace(build(""), `"ami-0abcdef1234567890"`, `aws_ami(owners = ["debian"], name = "debian-12-*")`, 1),
			`aws_ami: for parameter owners: element 0: "debian" is not an owner: give a 12-digit account id, "self", "amazon", "aws-marketplace" or "aws-backup-vault"`},
		{"lookup in another region", strings.Replace(build(""), `"ami-0abcdef1234567890"`, `aws_ami(owners = ["amazon"], name = "al2023-*", region = "us-east-1")`, 1),
			`amazon_ebs: for parameter source_ami: aws_ami(...) at images.star:1:68 searches region us-east-1, but the build runs in eu-west-1: an AMI id is only valid in its region; drop region from aws_ami(...)`},
		{"not an AMI at all", strings.Replace(build(""), `"ami-0abcdef1234567890"`, `42`, 1),
			`amazon_ebs: for parameter source_ami: got int, want an AMI id ("ami-0abc..."), another build's image_id or aws_ami(...)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := evaluate(t, tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
}

func TestGoodInputIsAccepted(t *testing.T) {
	for _, src := range []string{
		build(""),
		build(`, skip_region_validation = True, ami_regions = ["xx-future-9"]`),
		strings.Replace(build(""), `"web-1"`, `"web (nightly) [x86_64] 1.0/beta-'rc'@home_2"`, 1),
		strings.Replace(build(""), `"ami-0abcdef1234567890"`, `aws_ami(owners = ["136693071363"], name = "debian-12-amd64-*")`, 1),
		strings.Replace(build(""), `"ami-0abcdef1234567890"`, `"ami-12345678"`, 1),
		build(`, launch_block_device_mappings = [{"device_name": "/dev/xvda", "volume_type": "gp3", "volume_size": 20, "iops": 4000, "throughput": 250, "encrypted": True, "kms_key_id": "alias/x"}, {"device_name": "/dev/sdb", "virtual_name": "ephemeral0"}, {"device_name": "/dev/sdc", "no_device": True}]`),
		build(`, encrypt_boot = True, kms_key_id = "alias/images", ami_regions = ["us-east-1"], region_kms_key_ids = {"us-east-1": "alias/images-us"}`),
		build(`, spot_price = "auto", spot_instance_types = ["t3a.small"], metadata_options = {"http_tokens": "optional", "http_put_response_hop_limit": 2}`),
		build(`, assume_role = {"role_arn": "arn:aws:iam::123456789012:role/builder", "duration": "1h"}, deprecate_at = "8760h"`),
		"base = " + build("") + strings.Replace(strings.Replace(build(""), `"web"`, `"app"`, 1), `"ami-0abcdef1234567890"`, `base.image_id`, 1),
	} {
		if err := evaluate(t, src); err != nil {
			t.Errorf("%s\n%v", src, err)
		}
	}
}
