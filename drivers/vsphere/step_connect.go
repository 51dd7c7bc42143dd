package vsphere

import "context"

// stepConnect logs in to vCenter: one session for the whole build, kept
// alive while it waits. The session outlives the other steps (it is an
// artifact step, so its logout waits for the end of post-processing): the
// cleanups that remove the VM when a post-processor fails need it.
type stepConnect struct {
	env *buildEnv

	// outputs
	ep   *endpoint
	sess *vcSession
}

// Name implements step.Step.
func (s *stepConnect) Name() string { return "connect to vCenter" }

// MakesArtifact implements step.Artifact.
func (s *stepConnect) MakesArtifact() bool { return true }

// Run implements step.Step.
func (s *stepConnect) Run(ctx context.Context) error {
	b := s.env
	ep, err := resolveEndpoint(b.conn)
	if err != nil {
		return err
	}
	s.ep = ep
	// Before anything is made there: if imgbuild is killed, the next run
	// or imgbuild cleanup finds it by the build's marker.
	if err := b.record(ep); err != nil {
		return err
	}
	if bus := b.job.UI.Bus(); bus != nil {
		// A password from GOVC_URL or GOVC_PASSWORD was never declared
		// sensitive: make sure it is never shown either.
		bus.AddSecret(ep.Password)
	}
	b.say("logging in to %s as %s", ep, ep.Username)
	sess, err := login(ctx, ep)
	if err != nil {
		return ctxErr(ctx, err)
	}
	s.sess = sess
	return nil
}

// Cleanup logs out.
func (s *stepConnect) Cleanup(ctx context.Context, failed bool) error {
	if s.sess == nil {
		return nil
	}
	err := s.sess.logout(ctx)
	s.sess = nil
	return err
}

// Leftovers implements step.Leaver.
func (s *stepConnect) Leftovers() []string {
	if s.sess == nil {
		return nil
	}
	return []string{"a session on vCenter " + s.ep.String() + " (it expires by itself)"}
}
