package vsphere

import (
	"context"

	"github.com/imgbuild/imgbuild/engine/step"
)

// connectStep logs in to vCenter: one session for the whole build, kept
// alive while it waits. The session outlives the other steps (it is an
// artifact step, so its logout waits for the end of post-processing): the
// cleanups that remove the VM when a post-processor fails need it.
func (b *build) connectStep() step.Step {
	return &step.Func{
		StepName: "connect to vCenter",
		Artifact: true,
		RunFunc: func(ctx context.Context) error {
			ep, err := resolveEndpoint(b.conn)
			if err != nil {
				return err
			}
			b.ep = ep
			if bus := b.job.UI.Bus(); bus != nil {
				// A password from GOVC_URL or GOVC_PASSWORD was never
				// declared sensitive: make sure it is never shown either.
				bus.AddSecret(ep.Password)
			}
			b.say("logging in to %s as %s", ep, ep.Username)
			s, err := login(ctx, ep)
			if err != nil {
				return ctxErr(ctx, err)
			}
			b.sess = s
			return nil
		},
		CleanFunc: func(ctx context.Context, failed bool) error {
			if b.sess == nil {
				return nil
			}
			err := b.sess.logout(ctx)
			b.sess = nil
			return err
		},
		LeftFunc: func() []string {
			if b.sess == nil {
				return nil
			}
			return []string{"a session on vCenter " + b.ep.String() + " (it expires by itself)"}
		},
	}
}
