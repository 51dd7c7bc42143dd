package ssh

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// OpenSSHClient is how an OpenSSH client run on this machine (ssh -F
// Config Alias) logs in to the machine as the Communicator did: Config
// declares Host Alias with the machine's address, port and user; host key
// checking is on (StrictHostKeyChecking yes) against a known_hosts file
// that holds only the host keys imgbuild accepted (the machine's and the
// bastion's); the login keys are lent by an in-process ssh-agent
// (IdentityAgent), never written to a file, or, when imgbuild holds none,
// are those of the user's agent (ssh_agent_auth). Close stops the agent.
type OpenSSHClient struct {
	Config string
	Alias  string
	Close  func()
}

// OpenSSH writes the files of an OpenSSHClient into dir, which only this
// user can enter and whose path is short (the agent's socket is there).
// client names the program for messages ("testinfra").
func (e Endpoint) OpenSSH(ctx context.Context, dir, alias, client string) (*OpenSSHClient, error) {
	o := e.Options
	if e.HostKey == nil {
		return nil, fmt.Errorf("imgbuild has no host key of %s to give %s", o.Addr(), client)
	}
	lines := []string{knownhosts.Line([]string{knownhosts.Normalize(o.Addr())}, e.HostKey)}
	conf := []string{
		"Host " + alias,
		"  HostName " + o.Host,
		"  Port " + strconv.Itoa(o.Port),
		"  User " + o.Username,
	}
	if o.BastionHost != "" {
		baddr := net.JoinHostPort(o.BastionHost, strconv.Itoa(o.BastionPort))
		if e.BastionHostKey == nil {
			return nil, fmt.Errorf("imgbuild has no host key of the bastion %s to give %s", baddr, client)
		}
		lines = append(lines, knownhosts.Line([]string{knownhosts.Normalize(baddr)}, e.BastionHostKey))
		conf = append(conf, "  ProxyJump "+o.bastionUser()+"@"+baddr)
	}
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	conf = append(conf,
		"  UserKnownHostsFile "+configQuote(known),
		"  GlobalKnownHostsFile /dev/null",
		"  StrictHostKeyChecking yes",
		"  CheckHostIP no",
		"  BatchMode yes",
		"  PasswordAuthentication no",
		"  KbdInteractiveAuthentication no",
	)
	c := &OpenSSHClient{Alias: alias, Close: func() {}}
	signers := append(append([]gossh.Signer(nil), e.Signers...), e.BastionSigners...)
	switch {
	case len(signers) > 0:
		sock, stop, err := ServeAgent(ctx, dir, signers)
		if err != nil {
			return nil, fmt.Errorf("serving the login keys to %s: %w", client, err)
		}
		c.Close = stop
		conf = append(conf, "  IdentityAgent "+configQuote(sock))
	case o.AgentAuth:
		// The user's ssh-agent, through the inherited SSH_AUTH_SOCK.
	default:
		return nil, fmt.Errorf("imgbuild logs in to %s with ssh_password, which %s's ssh cannot be given without sshpass: log in with a key (ssh_private_key_file, or the build's own key)", o.Addr(), client)
	}
	c.Config = filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(c.Config, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// configQuote quotes a path for ssh_config.
func configQuote(p string) string {
	return `"` + p + `"`
}
