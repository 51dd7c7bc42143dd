package amazon_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"

	"github.com/imgbuild/imgbuild/drivers/amazon/awstest"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

func TestNoCredentialsAnywhereNamesTheChainSearched(t *testing.T) {
	h := newHarness(t)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	const region = "ap-south-1"
	before := h.moto.Inventory(t, region)
	rec := &testkit.Recorder{}
	sum := h.run(context.Background(), fmt.Sprintf(`amazon_ebs(name = "web", region = %q, source_ami = "ami-0abcdef1234567890", instance_type = "t3.small", %s, ami_name = "web-nocreds")`,
		region, h.sshKeywords()), rec)
	err := sum.Result("web").Err
	want := fmt.Sprintf(`pre-validate: no AWS credentials found; the SDK's credential chain searched, in order: `+
		`1. the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set); `+
		`2. profile "default" of the shared files %s and %s (keys, sso_session, role_arn, credential_process, web_identity_token_file); `+
		`3. web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN not set); `+
		`4. container credentials, ECS or EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI not set); `+
		`5. the EC2 instance role through the instance metadata service (disabled by AWS_EC2_METADATA_DISABLED). `+
		`Give credentials to one of them (export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, run "aws configure" or "aws sso login"), or name a profile that has them with profile = "..." (the SDK said: `,
		os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), os.Getenv("AWS_CONFIG_FILE"))
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error:\n%v\nwant it to start with:\n%s", err, want)
	}
	if got := rec.Steps("web"); len(got) != 1 {
		t.Errorf("steps %v: nothing may run after pre-validate", got)
	}
	if left := before.Added(h.moto.Inventory(t, region)); len(left) > 0 {
		t.Errorf("made: %v", left)
	}
}

func TestAccessDeniedSaysWhichCallAndWhichPermissionAndCleansUp(t *testing.T) {
	awstest.Start(t) // the package's environment first; this test overrides it
	priv := awstest.StartPrivate(t)
	h := newHarnessOn(t, priv)
	const region = "eu-west-1"
	source := h.sourceAMI(region)
	key, secret := priv.IAMUser(t, "ci", `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
		"ec2:DescribeImages", "ec2:DescribeVpcs", "ec2:DescribeInstances", "ec2:ImportKeyPair", "ec2:DeleteKeyPair",
		"ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress", "ec2:DeleteSecurityGroup", "ec2:CreateTags"]}]}`)
	before := priv.Inventory(t, region)
	priv.EnforceIAM(t)
	t.Setenv("AWS_ENDPOINT_URL", priv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", key)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)

	rec := &testkit.Recorder{}
	sum := h.run(context.Background(), fmt.Sprintf(`amazon_ebs(name = "web", region = %q, source_ami = %q, instance_type = "t3.small", %s, ami_name = "web-denied")`,
		region, source, h.sshKeywords()), rec)
	err := sum.Result("web").Err
	want := fmt.Sprintf(`launch instance: launching a t3.small instance from %s: RunInstances in eu-west-1 was denied (AccessDenied): `+
		`arn:aws:iam::123456789012:user/ci lacks the IAM permission ec2:RunInstances; allow "ec2:RunInstances" in a policy of arn:aws:iam::123456789012:user/ci `+
		`(with the resources and conditions it needs), or use credentials that have it`, source)
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s\n%s", err, want, rec.Log())
	}
	if n := len(rec.Of(event.CleanupFailed)); n > 0 {
		t.Errorf("%d cleanups failed:\n%s", n, rec.Log())
	}

	// Credentials AWS does not know are refused with what to check.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWN000000000")
	sum = h.run(context.Background(), fmt.Sprintf(`amazon_ebs(name = "web", region = %q, source_ami = %q, instance_type = "t3.small", %s, ami_name = "web-denied")`,
		region, source, h.sshKeywords()), nil)
	err = sum.Result("web").Err
	want = `pre-validate: looking for AMIs named "web-denied" in eu-west-1: DescribeImages in eu-west-1: AWS did not accept the credentials (AuthFailure: AWS was not able to validate the provided access credentials); check that they are current (aws sso login, a fresh session token) and that this machine's clock is right`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}

	priv.DisableIAM(t)
	if left := before.Added(priv.Inventory(t, region)); len(left) > 0 {
		t.Errorf("the build left:\n  %s", strings.Join(left, "\n  "))
	}
}

func TestAssumeRoleBuildsWithTheRolesCredentials(t *testing.T) {
	h := newHarness(t)
	const region = "me-south-1"
	sum, _ := h.mustRun(fmt.Sprintf(`amazon_ebs(name = "web", region = %q, source_ami = %q, instance_type = "t3.small", %s, skip_create_ami = True,
	    assume_role = {"role_arn": "arn:aws:iam::123456789012:role/image-builder", "session_name": "ci-run"})`, region, h.sourceAMI(region), h.sshKeywords()))
	_ = sum
	calls := strings.Join(h.faults.Calls(), "\n")
	if !strings.HasPrefix(calls, "STS.AssumeRole "+region+"\n") {
		t.Errorf("calls:\n%s\nwant STS.AssumeRole first", calls)
	}
}

func TestProfileTakesCredentialsFromTheSharedFiles(t *testing.T) {
	h := newHarness(t)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	creds := t.TempDir() + "/credentials"
	if err := os.WriteFile(creds, []byte("[ci]\naws_access_key_id = test\naws_secret_access_key = test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	const region = "eu-central-2"
	h.mustRun(fmt.Sprintf(`amazon_ebs(name = "web", region = %q, source_ami = %q, instance_type = "t3.small", %s, skip_create_ami = True, profile = "ci")`,
		region, h.sourceAMI(region), h.sshKeywords()))

	sum := h.run(context.Background(), fmt.Sprintf(`amazon_ebs(name = "web", region = %q, source_ami = %q, instance_type = "t3.small", %s, skip_create_ami = True, profile = "release")`,
		region, h.sourceAMI(region), h.sshKeywords()), nil)
	want := fmt.Sprintf(`AWS profile "release" is not in %s or %s: check profile (or AWS_PROFILE), or run "aws configure --profile release"`, creds, os.Getenv("AWS_CONFIG_FILE"))
	if err := sum.Result("web").Err; err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

func TestTheHarnessRefusesAnyEndpointButMoto(t *testing.T) {
	moto := awstest.Start(t)
	c := ec2.New(ec2.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("https://ec2.us-east-1.amazonaws.com"),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		APIOptions:   []func(*middleware.Stack) error{moto.Guard()},
	})
	_, err := c.DescribeRegions(context.Background(), &ec2.DescribeRegionsInput{})
	if err == nil || !strings.Contains(err.Error(), "awstest: refusing to send a request to ec2.us-east-1.amazonaws.com: tests talk to moto at 127.0.0.1:") {
		t.Errorf("error = %v", err)
	}
}
