package amazon

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/imgbuild/imgbuild/drivers/ssh"
)

// stepKeyPair makes the build's own ed25519 key pair and imports its public
// half as a temporary EC2 key pair, which the instance installs at boot.
// The private half never leaves memory. With ssh_keypair_name the named key
// pair is used instead and nothing is made.
type stepKeyPair struct {
	env  *buildEnv
	test bool // the test machine's: a key pair of its own (see tempName)

	// outputs
	key       *ssh.Key // the build's key pair, unless ssh_keypair_name
	keyName   string
	attempted bool // ImportKeyPair was called: the key pair may exist
}

// Name implements step.Step.
func (st *stepKeyPair) Name() string { return "key pair" }

// Run implements step.Step.
func (st *stepKeyPair) Run(ctx context.Context) error {
	b := st.env
	if b.cfg.SSHKeyPairName != "" {
		st.keyName = b.cfg.SSHKeyPairName
		return nil
	}
	st.keyName = b.tempName(st.test)
	key, err := ssh.NewKey("imgbuild-" + b.job.Name)
	if err != nil {
		return err
	}
	st.key = key
	st.attempted = true
	_, err = b.s.ec2(b.region).ImportKeyPair(ctx, &ec2.ImportKeyPairInput{
		KeyName:           aws.String(st.keyName),
		PublicKeyMaterial: []byte(key.AuthorizedKey()),
		TagSpecifications: tagSpec(types.ResourceTypeKeyPair, b.cfg.RunTags, b.ownTags()),
	})
	if err != nil {
		return fmt.Errorf("importing the temporary key pair %s: %w", st.keyName, explain(err))
	}
	b.ui.Say("temporary key pair %s (%s)", st.keyName, key.Fingerprint())
	return nil
}

// Cleanup deletes the key pair by name, which works even when the import's
// answer was lost; deleting a key pair that does not exist succeeds.
func (st *stepKeyPair) Cleanup(ctx context.Context, failed bool) error {
	if !st.attempted {
		return nil
	}
	b := st.env
	return b.tidy(ctx, func(ctx context.Context) error {
		_, err := b.s.ec2(b.region).DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(st.keyName)})
		if err != nil && !notFound(err) {
			return fmt.Errorf("deleting the temporary key pair %s in %s: %w", st.keyName, b.region, explain(err))
		}
		return nil
	})
}

// Leftovers implements step.Leaver: what the cleanup would remove.
func (st *stepKeyPair) Leftovers() []string {
	if !st.attempted {
		return nil
	}
	return []string{fmt.Sprintf("key pair %s in %s", st.keyName, st.env.region)}
}
