package awstest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Instances returns the environment for StartPrivate that makes every
// instance the server launches look like the machine at address whose host
// keys are hostKeys ("ssh-ed25519 AAAA..."): its public IP address is
// address, and its console shows the host keys as cloud-init prints them at
// boot (see imgbuild_moto.py). With CloudInit installing the instance's key
// pair there, a build that knows only what EC2 tells it (no ssh_host, no
// pinned host key: a template imported from Packer) connects to the local
// sshd, learning and checking its host key as it would on AWS.
func Instances(t testing.TB, address string, hostKeys ...string) []string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "host_keys")
	if err := os.WriteFile(f, []byte(strings.Join(hostKeys, "\n")+"\n"), 0o600); err != nil {
		t.Fatalf("awstest: %v", err)
	}
	return []string{"IMGBUILD_MOTO_INSTANCE_ADDRESS=" + address, "IMGBUILD_MOTO_HOST_KEYS=" + f}
}

// PublicImage is a public AMI a server of StartPrivate offers in every
// region, as AWS offers the distributions' images.
type PublicImage struct {
	ID, Name, Owner string
	// CreationDate is RFC 3339 ("2024-06-10T00:00:00.000Z"), for
	// most_recent lookups.
	CreationDate string
	// RootDevice is the root device's name; "" means /dev/xvda.
	RootDevice string
}

// PublicImages returns the environment for StartPrivate that makes images
// the server's public AMIs instead of moto's own (moto's MOTO_AMIS_PATH),
// so that a lookup by owner and name (aws_ami, Packer's amazon-ami data
// source and source_ami_filter) finds them.
func PublicImages(t testing.TB, images ...PublicImage) []string {
	t.Helper()
	var amis []map[string]any
	for _, img := range images {
		root := img.RootDevice
		if root == "" {
			root = "/dev/xvda"
		}
		amis = append(amis, map[string]any{
			"ami_id": img.ID, "name": img.Name, "owner_id": img.Owner, "creation_date": img.CreationDate,
			"state": "available", "public": true, "image_type": "machine", "architecture": "x86_64",
			"virtualization_type": "hvm", "hypervisor": "xen", "root_device_type": "ebs", "root_device_name": root,
			"description": img.Name, "image_location": img.Owner + "/" + img.Name,
		})
	}
	data, err := json.Marshal(amis)
	if err != nil {
		t.Fatalf("awstest: %v", err)
	}
	f := filepath.Join(t.TempDir(), "amis.json")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatalf("awstest: %v", err)
	}
	return []string{"MOTO_AMIS_PATH=" + f}
}
