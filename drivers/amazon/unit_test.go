package amazon

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	gossh "golang.org/x/crypto/ssh"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// consoleSample is console output as cloud-init prints it on Amazon Linux
// (lines prefixed "ec2: ") after kernel lines, with an earlier boot's
// block too.
const consoleSample = `[    0.000000] Linux version 6.1.0-13-cloud-amd64
-----BEGIN SSH HOST KEY KEYS-----
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ5T0Yk5B+f8mQ4mYt7+4Q0JvXwYV2L3i3pO0Cj9m4y root@old-boot
-----END SSH HOST KEY KEYS-----
[   12.345678] cloud-init[612]: Cloud-init v. 23.1 finished
ec2: #############################################################
ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----
ec2: 256 SHA256:abc root@ip-10-0-0-5 (ECDSA)
ec2: -----END SSH HOST KEY FINGERPRINTS-----
ec2: -----BEGIN SSH HOST KEY KEYS-----
ec2: ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBKxDMsqZ/YJgNesmqKyJPZQupwA0F4SlK1SwBxjMGAfclTPBTrkJx5jk1umh2gd+bcNpjCtoLXU6+4MssVGsn4k= root@ip-10-0-0-5
ec2: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl root@ip-10-0-0-5
ec2: -----END SSH HOST KEY KEYS-----
`

func TestConsoleHostKeyTakesTheLastBlocksStrongestKey(t *testing.T) {
	k := ConsoleHostKey(consoleSample)
	if k == nil {
		t.Fatal("no key found")
	}
	if k.Type() != gossh.KeyAlgoED25519 || !strings.HasSuffix(string(gossh.MarshalAuthorizedKey(k)), "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n") {
		t.Errorf("key %s", gossh.MarshalAuthorizedKey(k))
	}
	if k := ConsoleHostKey(strings.Replace(consoleSample, "ec2: -----END SSH HOST KEY KEYS-----\n", "", 1)); k == nil || !strings.Contains(string(gossh.MarshalAuthorizedKey(k)), "IGJ5T0Yk5B") {
		t.Errorf("an unfinished last block must be ignored for the complete one before it: %v", k)
	}
	if k := ConsoleHostKey(strings.Replace(consoleSample, "ec2: ssh-ed25519", "ec2: x-ssh-ed25519-gone", 1)); k == nil || k.Type() != "ecdsa-sha2-nistp256" {
		t.Errorf("without an ed25519 key the ECDSA one is next: %v", k)
	}
	if k := ConsoleHostKey("Linux version 6.1\nlogin:"); k != nil {
		t.Errorf("found %s in a console without keys", k.Type())
	}
}

func TestWaiterGivesUpAfterItsTimeLimitNamingTheKeyword(t *testing.T) {
	var polls int
	ui, rec := testkit.NewUI("web", BuilderName)
	w := newWaiter(ui, time.Millisecond, 30*time.Millisecond, "ami_wait_timeout")
	start := time.Now()
	err := w.wait(context.Background(), "AMI ami-12345678 to be available", func(ctx context.Context) (status, error) {
		polls++
		return status{state: "pending", percent: 40}, nil
	})
	want := "gave up waiting for AMI ami-12345678 to be available after 30ms: it is still pending; if it is only slow, raise ami_wait_timeout (it is 30ms)"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant %s", err, want)
	}
	if d := time.Since(start); d < 30*time.Millisecond || d > time.Second || polls < 3 {
		t.Errorf("waited %s over %d polls", d, polls)
	}
	progress := rec.Of(event.Progress)
	if len(progress) != polls || progress[0].Done != 40 || progress[0].Unit != "%" {
		t.Errorf("progress events %+v for %d polls", progress, polls)
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("interrupted"))
	err = w.wait(ctx, "x", func(ctx context.Context) (status, error) { return status{state: "pending", percent: -1}, nil })
	if err == nil || err.Error() != "interrupted" {
		t.Errorf("cancelled wait: %v", err)
	}
}

func TestAPIErrorsSayWhatToDo(t *testing.T) {
	for _, tc := range []struct {
		e    *APIError
		want string
	}{
		{&APIError{Service: "EC2", Operation: "RunInstances", Region: "eu-west-1", Code: "UnauthorizedOperation",
			Message: "You are not authorized to perform this operation. User: arn:aws:sts::123456789012:assumed-role/ci/run-7 is not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:eu-west-1:123456789012:instance/* because no identity-based policy allows the ec2:RunInstances action. Encoded authorization failure message: AbC123"},
			`RunInstances in eu-west-1 was denied (UnauthorizedOperation): arn:aws:sts::123456789012:assumed-role/ci/run-7 lacks the IAM permission ec2:RunInstances; allow "ec2:RunInstances" in a policy of arn:aws:sts::123456789012:assumed-role/ci/run-7 (with the resources and conditions it needs), or use credentials that have it`},
		{&APIError{Service: "EC2", Operation: "CreateImage", Region: "us-east-1", Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation."},
			`CreateImage in us-east-1 was denied (UnauthorizedOperation): the credentials in use lack the IAM permission ec2:CreateImage; allow "ec2:CreateImage" in a policy attached to them (with the resources and conditions it needs), or use credentials that have it`},
		{&APIError{Service: "EC2", Operation: "DescribeImages", Region: "us-east-1", Code: "OptInRequired", Message: "You are not subscribed to this service."},
			`DescribeImages in us-east-1: OptInRequired: You are not subscribed to this service.; enable the region (or subscribe to the product) in the account first`},
		{&APIError{Service: "EC2", Operation: "CopyImage", Region: "ap-south-1", Code: "RequestLimitExceeded", Message: "Request limit exceeded."},
			`CopyImage in ap-south-1: still throttled after every retry (RequestLimitExceeded: Request limit exceeded.); run fewer builds at once (--parallel) or ask AWS to raise the account's API limits`},
		{&APIError{Service: "EC2", Operation: "RunInstances", Region: "eu-west-1", Code: "InvalidAMIID.NotFound", Message: "The image id '[ami-12345678]' does not exist"},
			`RunInstances in eu-west-1: InvalidAMIID.NotFound: The image id '[ami-12345678]' does not exist`},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

func TestEncryptBootEncryptsTheRootVolumeAtLaunch(t *testing.T) {
	yes := true
	b := &buildEnv{region: "eu-west-1", cfg: &Config{EncryptBoot: true, KMSKeyID: "alias/images",
		LaunchBlockDeviceMappings: []BlockDevice{{DeviceName: "/dev/sdb", VolumeSize: 10}}}}
	source := &types.Image{RootDeviceName: aws.String("/dev/xvda")}
	got := b.launchMappings(source)
	if len(got) != 2 || got[1].DeviceName != "/dev/xvda" || got[1].Encrypted == nil || !*got[1].Encrypted || got[1].KMSKeyID != "alias/images" {
		t.Errorf("mappings %+v", got)
	}
	b.cfg.LaunchBlockDeviceMappings = []BlockDevice{{DeviceName: "/dev/xvda", VolumeSize: 30, VolumeType: "gp3"}}
	b.cfg.KMSKeyID = ""
	b.cfg.RegionKMSKeyIDs = map[string]string{"eu-west-1": "alias/eu"}
	got = b.launchMappings(source)
	if len(got) != 1 || got[0].Encrypted == nil || *got[0].Encrypted != yes || got[0].KMSKeyID != "alias/eu" || got[0].VolumeSize != 30 {
		t.Errorf("mappings %+v", got)
	}
	if m := got[0].ec2Mapping(); !*m.Ebs.Encrypted || *m.Ebs.KmsKeyId != "alias/eu" || !*m.Ebs.DeleteOnTermination {
		t.Errorf("EC2 mapping %+v", m.Ebs)
	}
}

func TestEveryKeywordAndOutputIsDocumented(t *testing.T) {
	reg := engine.NewRegistry()
	Register(reg)
	for _, name := range []string{BuilderName, LookupName} {
		s, ok := reg.Schema(name)
		if !ok {
			t.Fatalf("%s is not registered", name)
		}
		for _, f := range s.Fields {
			if f.Doc == "" {
				t.Errorf("%s: keyword %s has no doc", name, f.Keyword)
			}
		}
		if s.Doc == "" || !strings.Contains(s.Docs(), name+"(...)") {
			t.Errorf("%s: no reference", name)
		}
	}
	for _, o := range reg.Builders[BuilderName].Outputs {
		if o.Doc == "" {
			t.Errorf("output %s has no doc", o.Name)
		}
	}
}
