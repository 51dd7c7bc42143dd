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
type stepStopInstance struct{ b *build }

// Name implements step.Step.
func (st *stepStopInstance) Name() string { return "stop instance" }

// Run implements step.Step.
func (st *stepStopInstance) Run(ctx context.Context) error {
	b := st.b
	client := b.s.ec2(b.region)
	if b.comm != nil {
		// The connection ends with the instance; close it first so that
		// nothing waits on it.
		_ = b.comm.Close()
	}
	if _, err := client.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{b.instanceID}}); err != nil {
		return fmt.Errorf("stopping instance %s: %w", b.instanceID, explain(err))
	}
	return b.instanceWait.wait(ctx, "instance "+b.instanceID+" to stop", func(ctx context.Context) (status, error) {
		out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{b.instanceID}})
		if err != nil {
			return status{}, fmt.Errorf("waiting for instance %s to stop: %w", b.instanceID, explain(err))
		}
		inst := findInstance(out, b.instanceID)
		if inst == nil || inst.State == nil {
			return status{}, fmt.Errorf("instance %s vanished while stopping", b.instanceID)
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
		return status{}, fmt.Errorf("instance %s went %s while stopping%s", b.instanceID, inst.State.Name, reason)
	})
}
