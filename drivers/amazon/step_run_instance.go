package amazon

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// stepRunInstance launches the build instance on demand, tagged with
// run_tags (and its volumes too).
type stepRunInstance struct {
	launch
	attempted bool // RunInstances was called: an instance may exist
}

// Name implements step.Step.
func (st *stepRunInstance) Name() string { return "launch instance" }

// Run implements step.Step.
func (st *stepRunInstance) Run(ctx context.Context) error {
	b := st.env
	in, err := st.instance()
	if err != nil {
		return err
	}
	st.attempted = true
	out, err := b.s.ec2(b.region).RunInstances(ctx, in)
	if err != nil {
		return fmt.Errorf("launching a %s instance from %s: %w", b.cfg.InstanceType, aws.ToString(in.ImageId), explain(err))
	}
	if len(out.Instances) == 0 {
		return fmt.Errorf("RunInstances in %s launched no instance", b.region)
	}
	st.instanceID = aws.ToString(out.Instances[0].InstanceId)
	b.ui.Say("launched instance %s (%s) from %s", st.instanceID, b.cfg.InstanceType, aws.ToString(in.ImageId))
	return nil
}

// Cleanup always terminates the instance (found by its tag if the launch's
// answer was lost).
func (st *stepRunInstance) Cleanup(ctx context.Context, failed bool) error {
	if !st.attempted {
		return nil
	}
	return st.terminateInstance(ctx)
}

// Leftovers implements step.Leaver: what the cleanup would remove.
func (st *stepRunInstance) Leftovers() []string {
	if !st.attempted {
		return nil
	}
	return []string{st.leftover()}
}
