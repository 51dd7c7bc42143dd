package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/imgbuild/imgbuild/drivers/amazon/awstest"
	"github.com/imgbuild/imgbuild/drivers/post"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
)

// TestImportedAmazonTemplateRunsAgainstMoto imports the hcl-aws corpus (an
// amazon-ebs template as a Packer user writes it: no ssh_host, no host key,
// an amazon-ami data source and a source_ami_filter, a dynamic block, a
// named build with a source override) and runs the import unchanged with
// imgbuild run (the CLI, with the amazon driver on moto as the kill tests
// run it) against a moto of its own whose instances are the local sshd:
// the lookups find the newest Debian AMI of Debian's account, each
// instance's address and host key come from EC2 (DescribeInstances, the
// console), the provisioners ran on the machine, and the AMIs exist with
// their names, tags and the manifest that names them; nothing else is
// left.
func TestImportedAmazonTemplateRunsAgainstMoto(t *testing.T) {
	const region, debian = "eu-west-1", "136693071363"
	sshd := sshtest.Start(t)
	images := []awstest.PublicImage{
		{ID: "ami-0de12a0000000001a", Name: "debian-12-amd64-20240110-1620", Owner: debian, CreationDate: "2024-01-10T16:20:00.000Z"},
		{ID: "ami-0de12a0000000002b", Name: "debian-12-amd64-20240612-1742", Owner: debian, CreationDate: "2024-06-12T17:42:00.000Z"},
		{ID: "ami-0de11a0000000003c", Name: "debian-11-amd64-20240901-1900", Owner: debian, CreationDate: "2024-09-01T19:00:00.000Z"},
		{ID: "ami-0badc0ffee0000004", Name: "debian-12-amd64-20250101-0000", Owner: "999988887777", CreationDate: "2025-01-01T00:00:00.000Z"},
	}
	const newest = "ami-0de12a0000000002b" // of Debian's account, debian-12
	moto := awstest.StartPrivate(t, append(awstest.Instances(t, "127.0.0.1", sshd.HostKeyLine), awstest.PublicImages(t, images...)...)...)
	moto.Setenv(t)
	dir, _ := importCase(t, "hcl-aws")
	m := &mototest{t: t, moto: moto, sshd: sshd, regions: []string{region}, dir: dir}
	before := moto.Inventory(t, region)

	out := t.TempDir()
	log, err := m.imgbuild([]string{"run", "images.star", "--no-color", "--var", "region=" + region,
		"--var", fmt.Sprintf("ssh_port=%d", sshd.Port), "--var", "ssh_username=" + sshd.User, "--var", "out_dir=" + out}).CombinedOutput()
	if err != nil {
		t.Fatalf("imgbuild run: %v\n%s", err, log)
	}
	if n := strings.Count(string(log), "host key of i-"); n != 2 || !strings.Contains(string(log), "from its console: "+sshd.HostKeyFingerprint) {
		t.Errorf("the builds did not learn the sshd's host key %s from their consoles (%d said so):\n%s", sshd.HostKeyFingerprint, n, log)
	}

	// The provisioners ran on the machine, only/except applied.
	for file, want := range map[string]string{"built-base": "images base\n", "built-web": "images web\nweb only\n"} {
		if got, err := os.ReadFile(filepath.Join(out, file)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", file, got, err, want)
		}
	}

	// The manifest names both AMIs, with the template's custom_data. (Its
	// artifact_id is the AMI's id; Packer's is "region:ami-…".)
	data, err := os.ReadFile(filepath.Join(dir, "output", "manifest.json"))
	if err != nil {
		t.Fatalf("no manifest: %v\n%s", err, log)
	}
	var manifest post.ManifestData
	if err := json.Unmarshal(data, &manifest); err != nil {
		t.Fatal(err)
	}
	amis := map[string]string{} // build name → AMI id
	for _, raw := range manifest.Builds {
		var b post.ManifestBuild
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(b.ArtifactID, "ami-") || b.CustomData["region"] != region {
			t.Errorf("manifest entry %s: artifact_id %q, custom_data %v; want ami-… and region %s", b.Name, b.ArtifactID, b.CustomData, region)
		}
		amis[b.Name] = b.ArtifactID
	}
	if len(amis) != 2 || amis["images.amazon-ebs.base"] == "" || amis["images.amazon-ebs.web"] == "" {
		t.Fatalf("manifest builds: %v, want images.amazon-ebs.base and images.amazon-ebs.web\n%s", amis, data)
	}

	// The AMIs exist in moto as the template names and tags them.
	c := moto.EC2(region)
	ctx := context.Background()
	got, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{amis["images.amazon-ebs.base"], amis["images.amazon-ebs.web"]}})
	if err != nil || len(got.Images) != 2 {
		t.Fatalf("DescribeImages of the manifest's AMIs: %v, %d images", err, len(got.Images))
	}
	names := map[string]*regexp.Regexp{
		amis["images.amazon-ebs.base"]: regexp.MustCompile(`^base-\d{14}-base$`),
		amis["images.amazon-ebs.web"]:  regexp.MustCompile(`^web-\d{8}-\d{6}\.\d{3}-[0-9a-f]{6}$`), // run_id(), for uuidv4(),
	}
	for _, img := range got.Images {
		id, name := aws.ToString(img.ImageId), aws.ToString(img.Name)
		if string(img.State) != "available" || !names[id].MatchString(name) {
			t.Errorf("AMI %s: %s, name %q; want available, named as %s", id, img.State, name, names[id])
		}
		tags := map[string]string{}
		for _, tag := range img.Tags {
			tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		if id == amis["images.amazon-ebs.base"] && (tags["team"] != "platform" || tags["built_by"] != "imgbuild") {
			t.Errorf("the base AMI's tags %v, want team=platform and built_by=imgbuild (merge(var.tags, ...))", tags)
		}
	}

	// The instances were launched from the newest Debian 12 AMI of
	// Debian's account, with the template's types and metadata options,
	// and are terminated. (moto forgets a terminated instance's block
	// devices: the dynamic block's disks are pinned by want.plan.)
	insts, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range insts.Reservations {
		for _, i := range r.Instances {
			id := aws.ToString(i.InstanceId)
			types = append(types, string(i.InstanceType))
			if aws.ToString(i.ImageId) != newest || i.State == nil || i.State.Name != "terminated" {
				t.Errorf("instance %s: from %s, %v; want from %s and terminated", id, aws.ToString(i.ImageId), i.State, newest)
			}
			if i.InstanceType == "t3.small" {
				if i.MetadataOptions == nil || i.MetadataOptions.HttpTokens != "required" {
					t.Errorf("the base instance's metadata options %+v, want http_tokens required", i.MetadataOptions)
				}
			}
		}
	}
	slices.Sort(types)
	if !slices.Equal(types, []string{"t3.medium", "t3.small"}) {
		t.Errorf("instance types %v, want t3.small (base) and t3.medium (web, the build's source override)", types)
	}

	// Nothing else is left: the two AMIs and their snapshots only.
	for _, e := range before.Added(moto.Inventory(t, region)) {
		if !strings.Contains(e, " image ") && !strings.Contains(e, " snapshot ") {
			t.Errorf("left in moto: %s", e)
		}
	}
}
