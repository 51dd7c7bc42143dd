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
	b         *build
	attempted bool // ImportKeyPair was called: the key pair may exist
}

// Name implements step.Step.
func (st *stepKeyPair) Name() string { return "key pair" }

// Run implements step.Step.
func (st *stepKeyPair) Run(ctx context.Context) error {
	b := st.b
	if b.cfg.SSHKeyPairName != "" {
		b.keyName = b.cfg.SSHKeyPairName
		return nil
	}
	key, err := ssh.NewKey("imgbuild-" + b.job.Name)
	if err != nil {
		return err
	}
	b.key = key
	b.keyName = b.tempName()
	st.attempted = true
	_, err = b.s.ec2(b.region).ImportKeyPair(ctx, &ec2.ImportKeyPairInput{
		KeyName:           aws.String(b.keyName),
		PublicKeyMaterial: []byte(key.AuthorizedKey()),
		TagSpecifications: tagSpec(types.ResourceTypeKeyPair, b.cfg.RunTags, b.ownTags()),
	})
	if err != nil {
		return fmt.Errorf("importing the temporary key pair %s: %w", b.keyName, explain(err))
	}
	b.ui.Say("temporary key pair %s (%s)", b.keyName, key.Fingerprint())
	return nil
}

// Cleanup deletes the key pair by name, which works even when the import's
// answer was lost; deleting a key pair that does not exist succeeds.
func (st *stepKeyPair) Cleanup(ctx context.Context, failed bool) error {
	if !st.attempted {
		return nil
	}
	b := st.b
	return b.tidy(ctx, func(ctx context.Context) error {
		_, err := b.s.ec2(b.region).DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(b.keyName)})
		if err != nil && !notFound(err) {
			return fmt.Errorf("deleting the temporary key pair %s in %s: %w", b.keyName, b.region, explain(err))
		}
		return nil
	})
}

// Leftovers implements step.Leaver: what the cleanup would remove.
func (st *stepKeyPair) Leftovers() []string {
	if !st.attempted {
		return nil
	}
	return []string{fmt.Sprintf("key pair %s in %s", st.b.keyName, st.b.region)}
}
