package amazon

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// stepStopInstance stops the provisioned instance, so that the AMI is
// captured from quiet disks.
type stepStopInstance struct {
	env     *buildEnv
	launch  *launch
	connect *stepConnect // closed first
}

// Name implements step.Step.
func (st *stepStopInstance) Name() string { return "stop instance" }

// Run implements step.Step.
func (st *stepStopInstance) Run(ctx context.Context) error {
	b := st.env
	id := st.launch.instanceID
	client := b.s.ec2(b.region)
	if c := st.connect.Comm; c != nil {
		// The connection ends with the instance; close it first so that
		// nothing waits on it.
		_ = c.Close()
	}
	if _, err := client.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		return fmt.Errorf("stopping instance %s: %w", id, explain(err))
	}
	return b.instanceWait.wait(ctx, "instance "+id+" to stop", func(ctx context.Context) (status, error) {
		out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			return status{}, fmt.Errorf("waiting for instance %s to stop: %w", id, explain(err))
		}
		inst := findInstance(out, id)
		if inst == nil || inst.State == nil {
			return status{}, fmt.Errorf("instance %s vanished while stopping", id)
		}
		switch inst.State.Name {
		case types.InstanceStateNameStopped:
			return status{done: true, percent: -1}, nil
		case types.InstanceStateNameStopping, types.InstanceStateNameRunning, types.InstanceStateNamePending:
			return status{state: string(inst.State.Name), percent: -1}, nil
		}
		reason := ""
		if inst.StateReason != nil {
			reason = ": " + aws.ToString(inst.StateReason.Message)
		}
		return status{}, fmt.Errorf("instance %s went %s while stopping%s", id, inst.State.Name, reason)
	})
}
