package amazon_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

func TestAwsAmiPicksTheNewestMatchAtRunTimeAndInPlanRefresh(t *testing.T) {
	h := newHarness(t)
	const region = "ca-central-1"
	var ids []string
	for i := 1; i <= 3; i++ {
		if i > 1 {
			// moto's creation dates have whole seconds: the next image
			// must be made in a later second than the last one.
			last, err := time.Parse(time.RFC3339, aws.ToString(h.image(region, ids[len(ids)-1]).CreationDate))
			if err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, "the clock to pass "+last.String(), func() bool { return time.Now().Truncate(time.Second).After(last) })
		}
		ids = append(ids, h.makeImage(region, fmt.Sprintf("lookup-base-%d", i)))
	}
	h.makeImage(region, "other-base-9") // newer, but does not match
	newest := ids[2]

	src := fmt.Sprintf(`
amazon_ebs(name = "web", region = %q, source_ami = aws_ami(owners = ["self"], name = "lookup-base-*"),
           instance_type = "t3.small", %s, ami_name = "lookup-web")
`, region, h.sshKeywords())

	// plan --refresh resolves it read-only, in the build's region, like
	// the build does.
	d, err := h.load(src)
	if err != nil {
		t.Fatal(err)
	}
	before := h.moto.Inventory(t, region)
	plan := engine.MakePlan(d.Graph, h.reg, d.Root)
	if err := plan.Refresh(context.Background(), h.reg); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	plan.WriteText(&b)
	if !strings.Contains(b.String(), `aws_ami(owners = ["self"], name = "lookup-base-*") → `+newest) {
		t.Errorf("plan:\n%s\nwant the lookup resolved to %s", b.String(), newest)
	}
	if left := before.Added(h.moto.Inventory(t, region)); len(left) > 0 {
		t.Errorf("plan --refresh made: %v", left)
	}

	// The build resolves it in its own region and launches from it.
	sum, _ := h.mustRun(src)
	defer h.removeArtifact(sum.Result("web").Artifact)
	out, err := h.moto.EC2(region).DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:imgbuild:build"), Values: []string{"web"}},
	}})
	if err != nil || len(out.Reservations) != 1 {
		t.Fatalf("instances of the build: %+v %v", out, err)
	}
	if got := aws.ToString(out.Reservations[0].Instances[0].ImageId); got != newest {
		t.Errorf("launched from %s, want the newest match %s (of %v)", got, newest, ids)
	}

	// most_recent = False insists on a single match.
	d, err = h.load(strings.Replace(src, `name = "lookup-base-*"`, `name = "lookup-base-*", region = "ca-central-1", most_recent = False`, 1))
	if err != nil {
		t.Fatal(err)
	}
	plan = engine.MakePlan(d.Graph, h.reg, d.Root)
	err = plan.Refresh(context.Background(), h.reg)
	if err == nil || !strings.Contains(err.Error(), `aws_ami: 3 AMIs in ca-central-1 match aws_ami(owners = ["self"], name = "lookup-base-*") and most_recent = False: `+newest) ||
		!strings.HasSuffix(err.Error(), "narrow the name or filters, or set most_recent = True") {
		t.Errorf("error = %v", err)
	}

	// No match says what was searched.
	d, err = h.load(strings.Replace(src, `name = "lookup-base-*"`, `name = "nothing-*", region = "ca-central-1"`, 1))
	if err != nil {
		t.Fatal(err)
	}
	plan = engine.MakePlan(d.Graph, h.reg, d.Root)
	err = plan.Refresh(context.Background(), h.reg)
	if err == nil || !strings.HasSuffix(err.Error(), `aws_ami: no available AMI in ca-central-1 matches aws_ami(owners = ["self"], name = "nothing-*"); check the owners, the name pattern and the region`) {
		t.Errorf("error = %v", err)
	}
}
