package amazon

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// stepDeregister replaces, for force_deregister, the AMIs of the same name
// that pre-validate found: it deregisters them (and, with
// force_delete_snapshot, deletes their snapshots) in every region, just
// before the new AMI is made, so that a build that fails earlier leaves
// them alone.
type stepDeregister struct {
	env      *buildEnv
	existing *stepPrevalidate // the AMIs to replace
}

// Name implements step.Step.
func (st *stepDeregister) Name() string { return "deregister existing AMI" }

// Run implements step.Step.
func (st *stepDeregister) Run(ctx context.Context) error {
	b := st.env
	existing := st.existing.existing
	if len(existing) == 0 {
		return nil
	}
	return eachRegion(ctx, slices.Sorted(maps.Keys(existing)), func(region string) error {
		for _, img := range existing[region] {
			m := &madeImage{Region: region, ID: aws.ToString(img.ImageId)}
			if b.cfg.ForceDeleteSnapshot {
				m.Snapshots = snapshotsOf(img)
			}
			if err := b.removeImage(ctx, m); err != nil {
				return fmt.Errorf("force_deregister: %w", err)
			}
			if b.cfg.ForceDeleteSnapshot && len(m.Snapshots) > 0 {
				b.ui.Say("force_deregister: deregistered %s in %s and deleted its snapshots %v", m.ID, region, m.Snapshots)
			} else {
				b.ui.Say("force_deregister: deregistered %s in %s", m.ID, region)
			}
		}
		return nil
	})
}
