package amazon

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	gossh "golang.org/x/crypto/ssh"

	"github.com/imgbuild/imgbuild/drivers/ssh"
)

// stepConnect connects to the instance over SSH, at the address
// ssh_interface picks (or ssh_host), verifying its host key: the one
// pinned, else the one its console printed at boot. Its output, Comm, and
// its cleanup, which closes it, are ssh.ConnectStep's.
type stepConnect struct {
	ssh.ConnectStep
	env    *buildEnv
	launch *launch
	key    *stepKeyPair      // the build's key, unless ssh_keypair_name
	wait   *stepWaitInstance // the running instance's addresses

	// outputs
	hostKey gossh.PublicKey // as learned from the console
}

// Name implements step.Step.
func (st *stepConnect) Name() string { return "connect" }

// Run implements step.Step.
func (st *stepConnect) Run(ctx context.Context) error {
	b := st.env
	opts := b.cfg.SSH
	if b.job.Workspace != "" {
		opts.ResolvePaths(b.job.Workspace)
	}
	if opts.Host == "" {
		host, err := st.sshAddress()
		if err != nil {
			return err
		}
		opts.Host = host
	}
	if opts.HostKey == "" && opts.KnownHosts == "" && !opts.InsecureIgnoreHostKey {
		if err := st.learnHostKey(ctx); err != nil {
			return err
		}
	}
	st.Config = ssh.Config{Options: opts, HostKey: st.hostKey, Key: st.key.key, UI: b.ui}
	if err := st.ConnectStep.Run(ctx); err != nil {
		return fmt.Errorf("instance %s: %w", st.launch.instanceID, err)
	}
	return nil
}

// sshAddress is the instance's address that ssh_interface names.
func (st *stepConnect) sshAddress() (string, error) {
	inst, id := st.wait.instance, st.launch.instanceID
	pick := func(kw string, v *string, hint string) (string, error) {
		if aws.ToString(v) == "" {
			return "", fmt.Errorf("instance %s has no %s to connect to: %s", id, kw, hint)
		}
		return *v, nil
	}
	switch st.env.cfg.SSHInterface {
	case "public_ip":
		return pick("public IP address", inst.PublicIpAddress, "launch it in a subnet that gives one or set associate_public_ip_address = True, or set ssh_interface = \"private_ip\"")
	case "public_dns":
		return pick("public DNS name", inst.PublicDnsName, "enable DNS hostnames in its VPC, or set ssh_interface = \"public_ip\"")
	case "private_dns":
		return pick("private DNS name", inst.PrivateDnsName, "set ssh_interface = \"private_ip\"")
	case "private_ip":
		return pick("private IP address", inst.PrivateIpAddress, "check its network interface")
	}
	if aws.ToString(inst.PublicIpAddress) != "" {
		return *inst.PublicIpAddress, nil
	}
	return pick("IP address", inst.PrivateIpAddress, "check its network interface")
}

// learnHostKey reads the instance's console output until cloud-init has
// printed its host keys, and keeps the strongest.
func (st *stepConnect) learnHostKey(ctx context.Context) error {
	b := st.env
	id := st.launch.instanceID
	client := b.s.ec2(b.region)
	w := newWaiter(b.ui, b.cfg.WaitDelay, b.cfg.InstanceWaitTimeout, "instance_wait_timeout")
	err := w.wait(ctx, "the host keys on the console of "+id, func(ctx context.Context) (status, error) {
		out, err := client.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
		if err != nil {
			return status{}, fmt.Errorf("reading the console of %s for its host keys: %w", id, explain(err))
		}
		text, _ := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
		if key := ConsoleHostKey(string(text)); key != nil {
			st.hostKey = key
			return status{done: true, percent: -1}, nil
		}
		return status{state: "not printed yet", percent: -1}, nil
	})
	if err != nil {
		return fmt.Errorf("%w (the host key could not be learned from the instance's console, where cloud-init prints it: pin it with ssh_host_key, name a file with ssh_known_hosts, or set ssh_insecure_ignore_host_key = True)", err)
	}
	b.ui.Say("host key of %s from its console: %s", id, gossh.FingerprintSHA256(st.hostKey))
	return nil
}
