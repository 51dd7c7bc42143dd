package amazon

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// stepWaitInstance waits for the instance to run, and learns its
// addresses.
type stepWaitInstance struct {
	env    *buildEnv
	launch *launch

	// outputs
	instance *types.Instance // as it was once running
}

// Name implements step.Step.
func (st *stepWaitInstance) Name() string { return "wait for instance" }

// Run implements step.Step.
func (st *stepWaitInstance) Run(ctx context.Context) error {
	b := st.env
	id := st.launch.instanceID
	client := b.s.ec2(b.region)
	return b.instanceWait.wait(ctx, "instance "+id+" to run", func(ctx context.Context) (status, error) {
		out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if notFound(err) {
			return status{state: "not visible yet", percent: -1}, nil // EC2 is eventually consistent
		}
		if err != nil {
			return status{}, fmt.Errorf("waiting for instance %s: %w", id, explain(err))
		}
		inst := findInstance(out, id)
		if inst == nil || inst.State == nil {
			return status{state: "not visible yet", percent: -1}, nil
		}
		switch inst.State.Name {
		case types.InstanceStateNameRunning:
			st.instance = inst
			b.ui.Say("instance %s is running (private %s, public %s)", id, orNone(inst.PrivateIpAddress), orNone(inst.PublicIpAddress))
			return status{done: true, percent: -1}, nil
		case types.InstanceStateNamePending:
			return status{state: "pending", percent: -1}, nil
		}
		reason := ""
		if inst.StateReason != nil {
			reason = ": " + aws.ToString(inst.StateReason.Message)
		}
		return status{}, fmt.Errorf("instance %s went %s instead of running%s", id, inst.State.Name, reason)
	})
}

func findInstance(out *ec2.DescribeInstancesOutput, id string) *types.Instance {
	for _, r := range out.Reservations {
		for i := range r.Instances {
			if aws.ToString(r.Instances[i].InstanceId) == id {
				return &r.Instances[i]
			}
		}
	}
	return nil
}

func orNone(s *string) string {
	if aws.ToString(s) == "" {
		return "none"
	}
	return *s
}
