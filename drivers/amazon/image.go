package amazon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/imgbuild/imgbuild/engine/retry"
)

// What making and removing AMIs share, in any region.

// waitImage waits for the AMI id in region to be available and returns
// it. One call a poll: while the AMI's snapshots are being made it follows
// them (DescribeSnapshots, whose progress it reports), then the AMI itself
// (DescribeImages) until it is available.
func (e *buildEnv) waitImage(ctx context.Context, region, id, what string) (*types.Image, error) {
	client := e.s.ec2(region)
	var img *types.Image
	var snaps []string
	snapsDone := false
	err := e.amiWait.wait(ctx, what, func(ctx context.Context) (status, error) {
		if len(snaps) > 0 && !snapsDone {
			st, err := e.snapshotStatus(ctx, region, id, snaps)
			if err != nil {
				return status{}, err
			}
			snapsDone = st.done
			st.done = false // the AMI itself is next
			return st, nil
		}
		out, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
		if notFound(err) || (err == nil && len(out.Images) == 0) {
			return status{state: "not visible yet", percent: -1}, nil // EC2 is eventually consistent
		}
		if err != nil {
			return status{}, fmt.Errorf("waiting for %s in %s: %w", id, region, explain(err))
		}
		cur := out.Images[0]
		switch cur.State {
		case types.ImageStateAvailable:
			img = &cur
			return status{done: true, percent: 100}, nil
		case types.ImageStatePending:
			if snaps == nil {
				snaps = snapshotsOf(cur)
			}
			return status{state: "pending", percent: -1}, nil
		}
		reason := ""
		if cur.StateReason != nil {
			reason = ": " + aws.ToString(cur.StateReason.Message)
		}
		return status{}, fmt.Errorf("AMI %s in %s is %s%s", id, region, cur.State, reason)
	})
	return img, err
}

// snapshotStatus is how far an AMI's snapshots are: done when all are
// completed, with the progress of the least advanced.
func (e *buildEnv) snapshotStatus(ctx context.Context, region, id string, snaps []string) (status, error) {
	out, err := e.s.ec2(region).DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: snaps})
	if notFound(err) {
		return status{state: "pending", percent: -1}, nil // not visible yet
	}
	if err != nil {
		return status{}, fmt.Errorf("following the snapshots of %s in %s: %w", id, region, explain(err))
	}
	st := status{done: true, state: "snapshots completed", percent: 100}
	for _, s := range out.Snapshots {
		var p int
		if _, err := fmt.Sscanf(strings.TrimSuffix(aws.ToString(s.Progress), "%"), "%d", &p); err != nil {
			p = -1
		}
		switch s.State {
		case types.SnapshotStateError:
			return status{}, fmt.Errorf("snapshot %s of AMI %s in %s failed: %s", aws.ToString(s.SnapshotId), id, region, aws.ToString(s.StateMessage))
		case types.SnapshotStateCompleted:
		default:
			st.done = false
			st.state = "snapshotting"
		}
		if p < st.percent {
			st.percent = p
		}
	}
	if st.done {
		st.percent = 100
	}
	return st, nil
}

// snapshotsOf lists the EBS snapshots of an AMI's block device mappings.
func snapshotsOf(img types.Image) []string {
	var out []string
	for _, m := range img.BlockDeviceMappings {
		if m.Ebs != nil && aws.ToString(m.Ebs.SnapshotId) != "" {
			out = append(out, *m.Ebs.SnapshotId)
		}
	}
	return out
}

// removeImage deregisters an AMI and deletes the snapshots in m.Snapshots,
// going on when they are already gone.
func (e *buildEnv) removeImage(ctx context.Context, m *madeImage) error {
	client := e.s.ec2(m.Region)
	if _, err := client.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(m.ID)}); err != nil && !notFound(err) {
		return fmt.Errorf("deregistering %s in %s: %w", m.ID, m.Region, explain(err))
	}
	for _, s := range m.Snapshots {
		if _, err := client.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(s)}); err != nil && !notFound(err) {
			return fmt.Errorf("deleting snapshot %s of %s in %s: %w", s, m.ID, m.Region, explain(err))
		}
	}
	return nil
}

// discardImage removes the AMI this build made in region, and its
// snapshots. When the call that made it lost its answer (made is nil) it is
// found by its name, skipping existing, the AMIs force_deregister was to
// replace (pre-validate found them). It
// returns what it found to remove, so that a retry goes by id even once
// the AMI no longer answers to its name.
func (e *buildEnv) discardImage(ctx context.Context, region string, made *madeImage, existing []types.Image) (*madeImage, error) {
	var targets []*madeImage
	if made != nil && made.ID != "" {
		if made.Snapshots == nil {
			// It may not have been available yet: ask for its snapshots.
			out, err := e.s.ec2(region).DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{made.ID}})
			if err != nil && !notFound(err) {
				return made, fmt.Errorf("looking up %s in %s to remove it: %w", made.ID, region, explain(err))
			}
			if err == nil && len(out.Images) > 0 {
				made.Snapshots = snapshotsOf(out.Images[0])
			}
		}
		targets = append(targets, made)
	} else {
		imgs, err := e.imagesNamed(ctx, region, e.cfg.AMIName)
		if err != nil {
			return made, fmt.Errorf("looking for an AMI named %q in %s to remove it: %w", e.cfg.AMIName, region, err)
		}
		old := map[string]bool{}
		for _, img := range existing {
			old[aws.ToString(img.ImageId)] = true
		}
		for _, img := range imgs {
			if !old[aws.ToString(img.ImageId)] {
				targets = append(targets, &madeImage{Region: region, ID: aws.ToString(img.ImageId), Snapshots: snapshotsOf(img)})
			}
		}
		if len(targets) == 0 {
			return nil, nil
		}
		made = targets[0]
	}
	for _, m := range targets {
		if err := e.removeImage(ctx, m); err != nil {
			return made, err
		}
		e.ui.Say("removed AMI %s and its snapshots %v in %s", m.ID, m.Snapshots, region)
	}
	return made, nil
}

// tidy runs a cleanup action, trying again when it fails for a reason
// that may pass (a call that failed once must not leave anything behind);
// every action it runs can be repeated. A refusal (permissions,
// credentials) is not tried again.
func (e *buildEnv) tidy(ctx context.Context, fn func(ctx context.Context) error) error {
	var last error
	err := retry.Do(ctx, retry.Backoff{First: e.cfg.WaitDelay, Max: 30 * time.Second, Factor: 2}, cleanupAttempts,
		func(_ int, err error, _ time.Duration) { e.ui.Warn("cleanup: %v; trying again", err) },
		func(ctx context.Context, _ int) error {
			last = fn(ctx)
			var api *APIError
			if errors.As(last, &api) && (api.Denied() || api.badCredentials()) {
				return retry.Permanent(last)
			}
			return last
		})
	if err != nil && last != nil {
		// Out of time while waiting: what failed says more than that.
		return last
	}
	return err
}

// cleanupAttempts is how many times tidy tries a cleanup action.
const cleanupAttempts = 4

// untag removes imgbuild's own tags from an AMI the build made and its
// snapshots, once the build succeeded: they are how a killed build's
// half-made AMI is found (see JournalKind), and a finished AMI carries
// only the tags the description gives it. Failing that is a warning: the
// build's journal entry is done, so nothing will look for the AMI by them.
func (b *buildEnv) untag(ctx context.Context, m *madeImage) {
	if m == nil || m.ID == "" {
		return
	}
	err := b.tidy(ctx, func(ctx context.Context) error {
		_, err := b.s.ec2(m.Region).DeleteTags(ctx, &ec2.DeleteTagsInput{
			Resources: append([]string{m.ID}, m.Snapshots...),
			Tags:      []types.Tag{{Key: aws.String(TagToken)}, {Key: aws.String(TagBuild)}},
		})
		return err
	})
	if err != nil {
		b.ui.Warn("could not remove imgbuild's tags from %s in %s: %v", m.ID, m.Region, explain(err))
	}
}

// imageLeftover names what discardImage would remove.
func (e *buildEnv) imageLeftover(region string, m *madeImage) string {
	if m == nil || m.ID == "" {
		return fmt.Sprintf("an AMI named %q and its snapshots in %s", e.cfg.AMIName, region)
	}
	if len(m.Snapshots) == 0 {
		return fmt.Sprintf("AMI %s and its snapshots in %s", m.ID, region)
	}
	return fmt.Sprintf("AMI %s and snapshots %s in %s", m.ID, strings.Join(m.Snapshots, ", "), region)
}
