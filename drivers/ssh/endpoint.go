package ssh

import (
	gossh "golang.org/x/crypto/ssh"
)

// Endpoint is what another SSH client needs to log in to the machine as a
// Communicator does, verifying the same host key: the ansible() provisioner
// hands it to ansible-playbook when it connects directly (use_proxy =
// False). It holds private keys; keep it in memory.
type Endpoint struct {
	// Options are the SSH options connected with, the machine's address
	// included.
	Options Options
	// HostKey is the key the machine presented on the last connection and
	// imgbuild accepted; BastionHostKey the bastion's, when there is one.
	HostKey, BastionHostKey gossh.PublicKey
	// Verified is false when ssh_insecure_ignore_host_key turned
	// verification off: HostKey was then accepted without a check.
	Verified bool
	// Signers log in to the machine: the build's key, the certificate and
	// ssh_private_key_file (decrypted). The ssh-agent's keys are not among
	// them (Options.AgentAuth says to ask the agent), nor is the password.
	Signers []gossh.Signer
	// BastionSigners log in to the bastion.
	BastionSigners []gossh.Signer
}

// Endpoint says how to log in to the machine as the communicator does.
func (c *Communicator) Endpoint() Endpoint {
	d := c.d
	e := Endpoint{
		Options:  d.opts,
		HostKey:  d.acceptedKey(d.addr),
		Verified: !d.verify.insecure,
		Signers:  append([]gossh.Signer(nil), d.creds.signers...),
	}
	if d.bastion != nil {
		e.BastionHostKey = d.acceptedKey(d.bastion.addr)
		e.BastionSigners = append([]gossh.Signer(nil), d.bastion.creds.signers...)
	}
	return e
}
